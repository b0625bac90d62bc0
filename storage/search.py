"""Finding annonces: words, kind, category, commune, distance; newest or nearest first.

``run_search(conn, query, ...)`` is one page of results, a storage function
like any other (run it with ``Database.read``). Its parts:

- words: storage/words.py folds what a resident typed and widens each word to
  its French forms; the index is SQLite's FTS5 table (storage/search_index.py)
  or PostgreSQL's GIN index over ``to_tsvector('troc_french', troc_fold(...))``
  (migration 0003);
- distance: storage/geo.py turns a radius into a box of coarse points and a
  list of communes. The box's latitudes are listed one by one when they are
  few (``_lat_band``), one index seek each.

Query plans (SQLite, 100,000 annonces): when words or a radius would keep
only a few candidates (a capped count says so, ``CANDIDATE_CAP``) those are
fetched and sorted; otherwise the walk is by recency (the FTS5 rowid, which is
the annonce's document number, or the ``created`` index) and stops at the
page. How many annonces a radius holds is estimated from the population of
the communes within it (``weights``), without a count. "Nearest first" widens
rings of points and walks the communes in order of distance, newest first
within each.

On SQLite a page is a few index lookups of well under a millisecond: it runs
inline on the event loop (storage/db.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from protocol.annonce import Category, Kind, Photo, State
from storage.geo import Geo, Origin, haversine_km
from storage.photos import unpack_photos
from storage.search_index import DOC_EPOCH, DOC_MASK, DOC_SHIFT
from storage.words import fts_expression, pg_tsquery, query_words, word_forms

__all__ = [
    "Hit", "Origin", "Query", "ResultPage", "fts_expression", "haversine_km",
    "pg_tsquery", "query_words", "run_search", "word_forms",
]  # fmt: skip

CANDIDATE_CAP = 2000          # under this many candidates, fetch them all and sort
SMALL_SHARE = 0.02            # a radius holding less of the area's people: fetch its candidates
MAX_RESULTS = 1000            # pages go no deeper than this
FIRST_RING_KM = 2.0
LISTED_LATITUDES = 64         # a band of fewer latitudes is listed value by value


# --- The query -------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    text: str = ""
    kind: Kind | None = None
    category: Category | None = None
    commune: str | None = None
    origin: Origin | None = None
    radius_km: float | None = None
    nearest: bool = False
    page: int = 1
    per_page: int = 20
    # A member (node id, handle) kept apart from others by blocks
    # (storage/blocks.py): their annonces are left out, both ways.
    viewer: tuple[bytes, str] | None = None

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


@dataclass(frozen=True, slots=True)
class Hit:
    origin: bytes
    uid: bytes
    kind: Kind
    category: Category
    title: str
    excerpt: str
    commune: str | None
    lat: int | None
    lon: int | None
    author_name: str
    created: int
    updated: int
    expires: int
    sortie_at: int | None
    lang: str = "fr"
    distance_km: float | None = None
    photo: Photo | None = None  # the first, for the card


@dataclass(frozen=True, slots=True)
class ResultPage:
    hits: list[Hit]
    has_next: bool
    words: list[str] = field(default_factory=list)


EXCERPT_CHARS = 220
_COLUMNS = (
    "a.origin, a.uid, a.kind, a.category, a.title, substr(a.text, 1, {n}), a.commune,"
    " a.lat, a.lon, a.author_name, a.created, a.updated, a.expires, a.sortie_at, a.lang,"
    " a.photos"
).format(n=EXCERPT_CHARS + 1)


class _Sql:
    """Builds one statement: SQL text with ``?`` and its parameters, per dialect."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"
        self.where: list[str] = []
        self.params: list[object] = []

    def add(self, clause: str, *params: object) -> _Sql:
        self.where.append(clause)
        self.params.extend(params)
        return self

    def copy(self) -> _Sql:
        other = _Sql("sqlite" if self.sqlite else "postgresql")
        other.where, other.params = list(self.where), list(self.params)
        return other

    def clause(self) -> str:
        return " AND ".join(self.where) if self.where else "1=1"


def _render(conn: Connection, sql: str, params: list[object]):
    if conn.dialect.paramstyle == "numeric_dollar":
        counter = iter(range(1, len(params) + 1))
        sql = re.sub(r"\?", lambda _m: f"${next(counter)}", sql)
    return conn.exec_driver_sql(sql, tuple(params))


def _base_filters(query: Query, dialect: str, now: int) -> _Sql:
    sql = _Sql(dialect)
    sql.add("a.state = ?", State.OPEN.value).add("NOT a.hidden").add("a.expires > ?", now)
    # A sortie whose date has passed is no longer a result (it stays until it expires).
    sql.add("(a.sortie_at IS NULL OR a.sortie_at > ?)", now)
    if query.kind is not None:
        sql.add("a.kind = ?", query.kind.value)
    if query.category is not None:
        sql.add("a.category = ?", query.category.value)
    if query.commune is not None:
        sql.add("a.commune = ?", query.commune)
    if query.viewer is not None:
        sql.add(_NOT_BLOCKED, *query.viewer, *query.viewer)
    return sql


# Neither the annonces of members the viewer blocked, nor of those who blocked the viewer.
_NOT_BLOCKED = (
    "NOT EXISTS (SELECT 1 FROM member_blocks b WHERE b.blocker_node = ? AND b.blocker_handle = ?"
    " AND b.blocked_node = a.origin AND b.blocked_handle = a.author_handle)"
    " AND NOT EXISTS (SELECT 1 FROM member_blocks b WHERE b.blocked_node = ?"
    " AND b.blocked_handle = ? AND b.blocker_node = a.origin"
    " AND b.blocker_handle = a.author_handle)"
)


def _flat_sql(geo: Geo, sqlite: bool) -> tuple[str, list]:
    """Squared flat distance to the origin, in squared units (PostgreSQL: in float8)."""
    f = "?" if sqlite else "CAST(? AS DOUBLE PRECISION)"
    expr = f"((a.lat - {f}) * (a.lat - {f}) + (a.lon - {f}) * (a.lon - {f}) * {f})"
    o = geo.origin
    return expr, [o.lat, o.lat, o.lon, o.lon, geo.cos_lat**2]


def _lat_band(lat: str, lat_lo: int, lat_hi: int) -> tuple[str, list[int]]:
    """``lat`` between the bounds, as a list of values when it is short.

    The columns hold whole hundredths of a degree: listed, each latitude is
    one seek into the (lat, lon) index bounded by lon, where a range of lat
    would scan every longitude of the band (several times the rows).
    """
    if lat_hi - lat_lo < LISTED_LATITUDES:
        values = list(range(lat_lo, lat_hi + 1))
        return f"{lat} IN ({', '.join('?' * len(values))})", values
    return f"{lat} BETWEEN ? AND ?", [lat_lo, lat_hi]


def _geo_clause(geo: Geo, sqlite: bool, km: float | None = None, *, indexed: bool = True):
    """Points within the radius, or communes (without a point) within it."""
    lat_lo, lat_hi, lon_lo, lon_hi = geo.box(km)
    flat, flat_params = _flat_sql(geo, sqlite)
    # A unary + keeps SQLite from driving the query by these indexes.
    plus = "" if indexed or not sqlite else "+"
    band, band_params = _lat_band(f"{plus}a.lat", lat_lo, lat_hi)
    parts = [f"({band} AND a.lon BETWEEN ? AND ? AND {flat} <= ?)"]
    params: list[object] = [*band_params, lon_lo, lon_hi, *flat_params, geo.radius_units(km) ** 2]
    codes = [code for _, code in geo.near_communes(km)]
    if codes:
        commune = f"{plus}a.commune"
        # "+a.lat IS NULL": the commune index finds these, not the (lat, lon) one.
        no_point = "+a.lat IS NULL" if sqlite else "a.lat IS NULL"
        parts.append(f"({no_point} AND {commune} IN ({', '.join('?' * len(codes))}))")
        params += codes
    return "(" + " OR ".join(parts) + ")", params


def _words_clause(sql: _Sql, words: list[str]) -> None:
    """Restrict to annonces matching ``words``, for plans not driven by the index."""
    if not words:
        return
    if sql.sqlite:
        sql.add(
            "EXISTS (SELECT 1 FROM annonces_fts WHERE annonces_fts MATCH ? AND annonces_fts.rowid"
            f" = (((a.created - {DOC_EPOCH}) << {DOC_SHIFT}) | a.rowid))",
            fts_expression(words),
        )
    else:
        sql.add(_PG_MATCH, pg_tsquery(words))


_PG_MATCH = (
    "to_tsvector('troc_french'::regconfig, troc_fold(a.title || ' ' || a.text))"
    " @@ to_tsquery('troc_french'::regconfig, ?)"
)


def _count_capped(conn: Connection, sql: str, params: list[object]) -> int:
    capped = f"SELECT count(*) FROM ({sql} LIMIT {CANDIDATE_CAP}) AS c"
    return _render(conn, capped, params).scalar_one()


def _word_matches(conn: Connection, sqlite: bool, words: list[str]) -> int:
    if sqlite:
        return _count_capped(
            conn, "SELECT rowid FROM annonces_fts WHERE annonces_fts MATCH ?",
            [fts_expression(words)],
        )  # fmt: skip
    return _count_capped(conn, f"SELECT 1 FROM annonces a WHERE {_PG_MATCH}", [pg_tsquery(words)])


def _by_index(sql: _Sql, words: list[str], limit: int, offset: int):
    """Newest first, walking the word index (or, without words, the annonces)."""
    if words and sql.sqlite:
        statement = (
            f"SELECT {_COLUMNS} FROM annonces_fts f JOIN annonces a"
            f" ON a.rowid = (f.rowid & {DOC_MASK}) AND a.created = (f.rowid >> {DOC_SHIFT}) + {DOC_EPOCH}"
            f" WHERE annonces_fts MATCH ? AND {sql.clause()}"
            " ORDER BY f.rowid DESC LIMIT ? OFFSET ?"
        )
        return statement, [fts_expression(words), *sql.params, limit, offset]
    if words:
        sql = sql.copy()
        _words_clause(sql, words)
    order = "a.created DESC, a.rowid DESC" if sql.sqlite else "a.created DESC, a.id DESC"
    statement = f"SELECT {_COLUMNS} FROM annonces a WHERE {sql.clause()} ORDER BY {order} LIMIT ? OFFSET ?"
    return statement, [*sql.params, limit, offset]


_KINDS = {kind.value: kind for kind in Kind}  # a dict lookup: Enum(value) is slower
_CATEGORIES = {category.value: category for category in Category}


Measure = Callable[[str | None, int | None, int | None], float | None]


def _row_hit(row, measure: Measure) -> Hit:
    return Hit(
        origin=bytes(row[0]), uid=bytes(row[1]), kind=_KINDS[row[2]], category=_CATEGORIES[row[3]],
        title=row[4], excerpt=row[5], commune=row[6], lat=row[7], lon=row[8],
        author_name=row[9], created=row[10], updated=row[11], expires=row[12],
        sortie_at=row[13], lang=row[14], distance_km=measure(row[6], row[7], row[8]),
        photo=next(iter(unpack_photos(row[15])), None),
    )  # fmt: skip


def _newest(conn: Connection, query: Query, words: list[str], geo: Geo | None, now: int,
            measure: Measure):  # fmt: skip
    sql = _base_filters(query, conn.dialect.name, now)
    limit, offset = query.per_page + 1, query.offset
    if geo is None:
        statement, params = _by_index(sql, words, limit, offset)
        return [_row_hit(r, measure) for r in _render(conn, statement, params)]
    few_words = bool(words) and _word_matches(conn, sql.sqlite, words) < CANDIDATE_CAP
    few_places = not few_words and geo.share() < SMALL_SHARE
    clause, params = _geo_clause(geo, sql.sqlite, indexed=few_places)
    sql.add(clause, *params)
    if few_places:
        _words_clause(sql, words)
        order = "a.created DESC, a.rowid DESC" if sql.sqlite else "a.created DESC, a.id DESC"
        statement = (f"SELECT {_COLUMNS} FROM annonces a WHERE {sql.clause()}"
                     f" ORDER BY {order} LIMIT ? OFFSET ?")  # fmt: skip
        return [_row_hit(r, measure) for r in _render(conn, statement, [*sql.params, limit, offset])]
    statement, all_params = _by_index(sql, words, limit, offset)
    return [_row_hit(r, measure) for r in _render(conn, statement, all_params)]


def _nearest(conn: Connection, query: Query, words: list[str], geo: Geo, now: int,
             measure: Measure):  # fmt: skip
    """Nearest first: rings of points widened until full, communes in order of distance."""
    wanted = query.offset + query.per_page + 1
    base = _base_filters(query, conn.dialect.name, now)
    _words_clause(base, words)
    order = "a.created DESC, a.rowid DESC" if base.sqlite else "a.created DESC, a.id DESC"
    ranked: list[tuple[float, int, tuple]] = []
    # Points, in widening rings.
    km = min(FIRST_RING_KM, geo.radius_km)
    while True:
        sql = base.copy()
        lat_lo, lat_hi, lon_lo, lon_hi = geo.box(km)
        flat, flat_params = _flat_sql(geo, sql.sqlite)
        band, band_params = _lat_band("a.lat", lat_lo, lat_hi)
        sql.add(f"{band} AND a.lon BETWEEN ? AND ? AND {flat} <= ?",
                *band_params, lon_lo, lon_hi, *flat_params, geo.radius_units(km) ** 2)  # fmt: skip
        statement = (f"SELECT {_COLUMNS}, {flat} AS d FROM annonces a WHERE {sql.clause()}"
                     f" ORDER BY d, {order} LIMIT ?")  # fmt: skip
        rows = list(_render(conn, statement, [*flat_params, *sql.params, wanted]))
        if len(rows) >= wanted or km >= geo.radius_km:
            break
        km = min(km * 2, geo.radius_km)
    ranked += [(row[-1], -row[10], row) for row in rows]
    # Communes without a point: all at their centre's distance, newest first.
    from_communes = 0
    for d, code in geo.near_communes():
        sql = base.copy().add("a.lat IS NULL AND a.commune = ?", code)
        statement = f"SELECT {_COLUMNS} FROM annonces a WHERE {sql.clause()} ORDER BY {order} LIMIT ?"
        rows = list(_render(conn, statement, [*sql.params, wanted - from_communes]))
        ranked += [(d, -row[10], row) for row in rows]
        from_communes += len(rows)
        if from_communes >= wanted:
            break
    ranked.sort(key=lambda item: (item[0], item[1]))
    # Hits only for the rows shown: the rings and the communes read more than a page.
    shown = ranked[query.offset : query.offset + query.per_page + 1]
    return [_row_hit(row, measure) for _, _, row in shown]


def _measure_from(origin: Origin | None, communes: Mapping[str, tuple[float, float]]) -> Measure:
    """How far an annonce is from ``origin``: its point, else its commune's centre (or None)."""
    if origin is None:
        return lambda _commune, _lat, _lon: None

    def measure(commune: str | None, lat: int | None, lon: int | None) -> float | None:
        if lat is None:
            if commune not in communes:
                return None
            lat, lon = communes[commune]
        return haversine_km(origin.lat, origin.lon, lat, lon)

    return measure


def run_search(
    conn: Connection,
    query: Query,
    *,
    now: int,
    communes: Mapping[str, tuple[float, float]],
    distance_from: Origin | None = None,
    weights: Mapping[str, int] | None = None,
) -> ResultPage:
    """One page of results; ``communes`` maps INSEE codes to centres (hundredths of a degree).

    ``distance_from`` (defaulting to the query's origin) is where the
    distances shown are measured from, with or without a radius.
    """
    words = query_words(query.text)
    if query.offset >= MAX_RESULTS:
        return ResultPage([], False, words)
    geo = None
    if query.origin is not None and query.radius_km:
        geo = Geo(query.origin, query.radius_km, communes, weights)
    measure = _measure_from(distance_from or query.origin, communes)
    if geo is not None and query.nearest:
        hits = _nearest(conn, query, words, geo, now, measure)
    else:
        hits = _newest(conn, query, words, geo, now, measure)
    return ResultPage(hits[: query.per_page], len(hits) > query.per_page, words)
