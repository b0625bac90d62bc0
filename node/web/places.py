"""The communes of the agglomeration (node/data/communes.json) and residents' places.

Loaded once when the application starts. Positions are kept in hundredths of
a degree, the unit of the protocol's coarse points.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup, escape

from protocol import limits

COMMUNES_FILE = Path(__file__).resolve().parent.parent / "data" / "communes.json"


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
