"""The communes of the agglomeration (node/data/communes.json) and residents' places.

Loaded once when the application starts. Positions are kept in hundredths of
a degree, the unit of the protocol's coarse points. Residents choose places
by commune name; a coarse point stored earlier is named by the nearest
commune, and is in the agglomeration when it is within
``MAX_KM_FROM_A_COMMUNE`` of a commune's centre.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup, escape

from protocol import limits
from storage.geo import Origin, haversine_km

MAX_KM_FROM_A_COMMUNE = 8.0  # farther from every commune's centre: outside the agglomeration
COMMUNES_FILE = Path(__file__).resolve().parent / "data" / "communes.json"


@dataclass(frozen=True, slots=True)
class Commune:
    insee: str
    name: str
    postal_codes: tuple[str, ...]
    lat: float  # hundredths of a degree
    lon: float
    population: int = 0


class Communes:
    def __init__(self, area: str, communes: list[Commune]) -> None:
        self.area = area
        self.by_code = {c.insee: c for c in communes}
        self.sorted = sorted(communes, key=lambda c: _sort_key(c.name))
        self.centres = {c.insee: (c.lat, c.lon) for c in communes}
        self.populations = {c.insee: c.population for c in communes}
        self._options: str | None = None

    def options_html(self, selected: str | None = None) -> Markup:
        """The <option>s of every commune, sorted by name (built once, marked per call)."""
        if self._options is None:
            self._options = "".join(
                f'<option value="{escape(c.insee)}">{escape(c.name)}</option>' for c in self.sorted
            )
        html = self._options
        if selected in self.by_code:
            html = html.replace(f'value="{selected}">', f'value="{selected}" selected>', 1)
        return Markup(html)

    def name(self, code: str | None) -> str | None:
        if code is None:
            return None
        commune = self.by_code.get(code)
        return commune.name if commune else code

    def __contains__(self, code: object) -> bool:
        return code in self.by_code

    def origin_of(self, commune: str | None, lat: int | None, lon: int | None) -> Origin | None:
        """Where distances from a place are measured: its point, or its commune's centre."""
        if lat is not None and lon is not None:
            return Origin(lat, lon)
        centre = self.centres.get(commune)
        return Origin(*centre) if centre else None

    def nearest(self, lat: float, lon: float) -> tuple[Commune, float]:
        """The commune whose centre is nearest a point, and how far it is (km)."""
        return min(((c, haversine_km(lat, lon, c.lat, c.lon)) for c in self.sorted),
                   key=lambda pair: pair[1])  # fmt: skip

    def near(self, lat: float | None, lon: float | None) -> bool:
        """Whether a point is in the agglomeration (near one of its communes)."""
        if lat is None or lon is None or not self.sorted:
            return False
        return self.nearest(lat, lon)[1] <= MAX_KM_FROM_A_COMMUNE


def _sort_key(name: str) -> str:
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()


def load_communes(path: Path = COMMUNES_FILE) -> Communes:
    data = json.loads(path.read_text(encoding="utf-8"))
    communes = [
        Commune(c["insee"], c["name"], tuple(c["postal_codes"]),
                c["lat"] * limits.POINT_SCALE, c["lon"] * limits.POINT_SCALE,
                c.get("population", 0))  # fmt: skip
        for c in data["communes"]
    ]
    return Communes(data["name"], communes)
