"""Places and distances for searches: where from, how far, which box and communes.

An annonce is placed at its coarse point if it has one, else at the centre of
its commune (the caller passes the centres, in hundredths of a degree). A
radius becomes a bounding box on ``(lat, lon)`` plus the list of communes
whose centre is within it; distances in SQL are equirectangular (exact enough
at the scale of a département, and monotonic), and the haversine distance
shown to the resident is computed here for a page's few hits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

KM_PER_UNIT = 1.11195         # one hundredth of a degree of latitude, in km
EARTH_RADIUS_KM = 6371.0


@dataclass(frozen=True, slots=True)
class Origin:
    """Where distances are measured from, in hundredths of a degree."""

    lat: float
    lon: float


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two points given in hundredths of a degree."""
    p1, p2 = math.radians(lat1 / 100), math.radians(lat2 / 100)
    dp, dl = p2 - p1, math.radians((lon2 - lon1) / 100)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class Geo:
    origin: Origin
    radius_km: float
    communes: Mapping[str, tuple[float, float]]
    weights: Mapping[str, int] | None = None

    @property
    def cos_lat(self) -> float:
        return math.cos(math.radians(self.origin.lat / 100))

    def flat_units2(self, lat: float, lon: float) -> float:
        dy, dx = lat - self.origin.lat, (lon - self.origin.lon) * self.cos_lat
        return dy * dy + dx * dx

    def radius_units(self, km: float | None = None) -> float:
        return (self.radius_km if km is None else km) / KM_PER_UNIT

    def box(self, km: float | None = None) -> tuple[int, int, int, int]:
        """The bounding box, widened to whole units (the columns are integers)."""
        r = self.radius_units(km)
        dlon = r / max(self.cos_lat, 0.01)
        return (math.floor(self.origin.lat - r), math.ceil(self.origin.lat + r),
                math.floor(self.origin.lon - dlon), math.ceil(self.origin.lon + dlon))  # fmt: skip

    def share(self) -> float:
        """The part of the area's people within the radius: about that of its annonces."""
        total = sum(self.weights.values()) if self.weights else len(self.communes)
        near = [code for _, code in self.near_communes()]
        held = sum(self.weights.get(c, 0) for c in near) if self.weights else len(near)
        return held / total if total else 0.0

    def near_communes(self, km: float | None = None) -> list[tuple[float, str]]:
        """(squared flat distance, code) of the communes within the radius, nearest first."""
        limit = self.radius_units(km) ** 2
        near = [
            (self.flat_units2(lat, lon), code)
            for code, (lat, lon) in self.communes.items()
        ]
        return sorted(item for item in near if item[0] <= limit)
