"""Public places where two residents may meet for an exchange, by commune.

The node's own file (node/data/meeting_places.json) names, for each of the
agglomeration's communes, its mairie and, where one is known for sure,
another public place; names stay generic (« la mairie de Boé »): no street
address is ever invented. An association may add its own places in
``DATA/meeting_places.json``, in the same format: an object whose keys are
INSEE codes of the node's communes and whose values are lists of names. Its
places come after the node's for the same commune. A malformed file stops
the node, with the file and the line at fault (``MeetingPlacesError``).
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from types import MappingProxyType

from aiohttp import web

from node.data_files import read_json_file
from node.keys import communes_key, settings_key

MEETING_PLACES_FILE = "meeting_places.json"  # the association's own, in the data directory
BASE_MEETING_PLACES = Path(__file__).resolve().parent / "data" / MEETING_PLACES_FILE
MAX_MEETING_PLACES_BYTES = 256 * 1024
MAX_PLACES_PER_COMMUNE = 12  # of both files together
MAX_PLACE_CHARS = 120

meeting_places_key = web.AppKey("meeting_places_key", MappingProxyType)


class MeetingPlacesError(ValueError):
    """A meeting places file is malformed: the message names the file and the line."""


def load_meeting_places(communes: Collection[str], extra: Path | None = None) -> MappingProxyType:
    """Each commune's places (INSEE code → names), the association's after the node's."""
    places: dict[str, tuple[str, ...]] = {}
    for path in (BASE_MEETING_PLACES, extra) if extra is not None else (BASE_MEETING_PLACES,):
        for code, names in _read(path, communes).items():
            merged = places.get(code, ()) + tuple(n for n in names if n not in places.get(code, ()))
            if len(merged) > MAX_PLACES_PER_COMMUNE:
                raise MeetingPlacesError(f"{path}: line {_line_of(path, code)}: commune {code} has "
                                         f"more than {MAX_PLACES_PER_COMMUNE} places")  # fmt: skip
            places[code] = merged
    return MappingProxyType(places)


def _line_of(path: Path, code: str) -> int:
    """The line where the commune's entry starts (the first, if it is not found)."""
    for n, line in enumerate(path.read_text("utf-8", errors="replace").splitlines(), 1):
        if f'"{code}"' in line:
            return n
    return 1


def _read(path: Path, communes: Collection[str]) -> dict[str, list[str]]:
    entries = read_json_file(path, MAX_MEETING_PLACES_BYTES, MeetingPlacesError)
    if not isinstance(entries, dict):
        raise MeetingPlacesError(f"{path}: line 1: must be an object of INSEE codes and lists "
                                 "of places")  # fmt: skip
    for code, names in entries.items():
        where = f"{path}: line {_line_of(path, code)}"
        if code not in communes:
            raise MeetingPlacesError(f"{where}: {code!r} is not the INSEE code of a commune of "
                                     "the node")  # fmt: skip
        if not isinstance(names, list) or not names:
            raise MeetingPlacesError(f"{where}: commune {code}: must be a list of places")
        for name in names:
            if not isinstance(name, str) or not name.strip() or len(name) > MAX_PLACE_CHARS \
                    or any(ord(c) < 32 for c in name):  # fmt: skip
                raise MeetingPlacesError(f"{where}: commune {code}: each place is a text of 1 to "
                                         f"{MAX_PLACE_CHARS} characters on one line")  # fmt: skip
    return {code: [n.strip() for n in names] for code, names in entries.items()}


def places_in(app: web.Application, commune: str | None) -> tuple[str, ...]:
    """The public places suggested in ``commune`` (none for an unknown one)."""
    if commune is None:
        return ()
    return app[meeting_places_key].get(commune, ())


def setup_meeting_places(app: web.Application) -> None:
    app.cleanup_ctx.append(meeting_places_ctx)


async def meeting_places_ctx(app: web.Application):
    """Cleanup context: the places, read once when the node starts (after the communes)."""
    extra = app[settings_key].data_dir / MEETING_PLACES_FILE
    app[meeting_places_key] = load_meeting_places(
        app[communes_key], extra if extra.exists() else None
    )
    yield
