"""Finding annonces: words, kind, category, commune, distance; newest or nearest first.

The index
    SQLite: ``annonces_fts``, a contentless FTS5 table (unicode61 tokenizer,
    diacritics removed, so accents and case do not matter). Its rowid is the
    annonce's *document number*, ``(created - DOC_EPOCH) << DOC_SHIFT | rowid``:
    walking the index by rowid descending is walking the annonces newest
    first, so "newest first" stops after one page even for a word found in
    most annonces, and the number leads back to the row by its rowid. It is
    kept up to date per ingested batch (``index_annonces`` and
    ``unindex_annonces``, called by storage/annonces.py inside the ingest
    transaction; one ``INSERT … SELECT`` per batch), and on every delete
    (``unindex_where``). Withdrawn annonces are never indexed.
    PostgreSQL: a GIN index over ``to_tsvector('troc_french', troc_fold(...))``
    (migration 0003), kept up to date by the database itself.
    Plurals: PostgreSQL's French stemmer handles them; on SQLite each query
    word is widened to its French singular and plural forms (``word_forms``).

Distance
    An annonce is placed at its coarse point if it has one, else at the centre
    of its commune (the caller passes the centres). A radius becomes a
    bounding box on ``(lat, lon)`` — its latitudes listed one by one when they
    are few (``_lat_band``), one index seek each — plus the list of communes
    whose centre is within it; distances are equirectangular in SQL (exact enough at the scale
    of a département, and monotonic), and the haversine distance shown to the
    resident is computed in Python for the page's few hits.

Query plans (SQLite, 100,000 annonces): when words or a radius would keep
only a few candidates (a capped count says so, ``CANDIDATE_CAP``) those are
fetched and sorted; otherwise the walk is by recency (the FTS5 rowid or the
``created`` index) and stops at the page. How many annonces a radius holds
is estimated from the population of the communes within it (``weights``),
without a count. "Nearest first" widens rings of
points and walks the communes in order of distance, newest first within each.

Reads go through ``Reader``: on SQLite a synchronous SQLAlchemy engine run
inline on the event loop (each page is a few index lookups of well under a
millisecond, cheaper than a hop to aiosqlite's thread), on PostgreSQL the
async engine. The query functions are written once, for a sync Connection.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy import and_, create_engine, event, literal, or_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import column, table

from protocol import limits
from protocol.annonce import Annonce, Category, Kind, Point, State
from storage.db import SQLITE_BUSY_TIMEOUT_MS, Database
from storage.schema import annonces

DOC_SHIFT = 30
DOC_EPOCH = limits.MIN_TIMESTAMP
DOC_MASK = (1 << DOC_SHIFT) - 1
CANDIDATE_CAP = 2000          # under this many candidates, fetch them all and sort
SMALL_SHARE = 0.02            # a radius holding less of the area's people: fetch its candidates
MAX_QUERY_WORDS = 8
MAX_QUERY_CHARS = 200
MAX_RESULTS = 1000            # pages go no deeper than this
KM_PER_UNIT = 1.11195         # one hundredth of a degree of latitude, in km
EARTH_RADIUS_KM = 6371.0
FIRST_RING_KM = 2.0
LISTED_LATITUDES = 64         # a band of fewer latitudes is listed value by value

_fts = table("annonces_fts", column("annonces_fts"), column("rowid"),
             column("title"), column("text"))  # fmt: skip
_DOC = ((annonces.c.created - DOC_EPOCH).op("<<")(DOC_SHIFT)).op("|")(
    literal(DOC_MASK).op("&")(column("rowid"))
)


# --- Keeping the SQLite index up to date ------------------------------------


def _keys_condition(keys: Iterable[tuple[bytes, bytes]]):
    uids_by_origin: dict[bytes, list[bytes]] = {}
    for origin, uid in keys:
        uids_by_origin.setdefault(origin, []).append(uid)
    return or_(*(
        and_(annonces.c.origin == origin, annonces.c.uid.in_(uids))
        for origin, uids in uids_by_origin.items()
    ))  # fmt: skip


def _indexed_rows(condition):
    return select(_DOC, annonces.c.title, annonces.c.text).where(
        condition, annonces.c.state != State.WITHDRAWN.value
    )


async def index_annonces(conn, keys: Sequence[tuple[bytes, bytes]]) -> None:
    """Index the current revisions of ``keys`` (just written, in this transaction)."""
    if conn.dialect.name != "sqlite" or not keys:
        return
    for start in range(0, len(keys), 500):
        rows = _indexed_rows(_keys_condition(keys[start : start + 500]))
        await conn.execute(_fts.insert().from_select(["rowid", "title", "text"], rows))


async def unindex_annonces(conn, keys: Sequence[tuple[bytes, bytes]]) -> None:
    """Take the revisions of ``keys`` held now out of the index, before they change."""
    if conn.dialect.name != "sqlite" or not keys:
        return
    for start in range(0, len(keys), 500):
        await unindex_where(conn, _keys_condition(keys[start : start + 500]))


async def unindex_where(conn, condition) -> None:
    """Take the annonces matching ``condition`` out of the index, before a delete.

    A contentless FTS5 table forgets a document when told the values it
    indexed: they are read from the row itself, which has not changed since.
    """
    if conn.dialect.name != "sqlite":
        return
    rows = select(literal("delete"), _DOC, annonces.c.title, annonces.c.text).where(
        condition, annonces.c.state != State.WITHDRAWN.value
    )
    await conn.execute(
        _fts.insert().from_select(["annonces_fts", "rowid", "title", "text"], rows)
    )


# --- Query words -----------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)
STOP_WORDS = frozenset(
    "a au aux avec ce ces d dans de des du en et il je l la le les leur ma mais me mes "
    "mon ne nous on ou par pas pour qu que qui sa se ses son sur ta te tes ton tu un une "
    "vos votre vous y".split()
)


def fold(text: str) -> str:
    """Lower case, accents removed, as the index sees words."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("œ", "oe")


def query_words(text: str) -> list[str]:
    """The searchable words of what a resident typed: folded, no stop words."""
    words: list[str] = []
    for word in _WORD.findall(fold(text[:MAX_QUERY_CHARS])):
        if len(word) > 1 and word not in STOP_WORDS and word not in words:
            words.append(word)
    return words[:MAX_QUERY_WORDS]


def word_forms(word: str) -> list[str]:
    """A folded word with its French singular and plural forms."""
    forms = [word]
    if len(word) > 4 and word.endswith("aux"):
        forms += [word[:-3] + "al", word[:-3] + "ail", word[:-1]]
    elif len(word) > 3 and word.endswith(("s", "x")):
        forms.append(word[:-1])
    else:
        forms.append(word + "s")
        if word.endswith(("au", "eu", "ou")):
            forms.append(word + "x")
        elif len(word) > 3 and word.endswith("al"):
            forms.append(word[:-2] + "aux")
        elif len(word) > 4 and word.endswith("ail"):
            forms.append(word[:-3] + "aux")
    return forms


def fts_expression(words: Sequence[str]) -> str:
    """An FTS5 query: every word, in any of its forms (terms quoted: no syntax)."""
    groups = []
    for word in words:
        forms = " OR ".join(f'"{form}"' for form in word_forms(word))
        groups.append(f"({forms})")
    return " AND ".join(groups)


# --- Places and distances --------------------------------------------------------


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
class _Geo:
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
    distance_km: float | None = None


@dataclass(frozen=True, slots=True)
class ResultPage:
    hits: list[Hit]
    has_next: bool
    words: list[str] = field(default_factory=list)


EXCERPT_CHARS = 220
_COLUMNS = (
    "a.origin, a.uid, a.kind, a.category, a.title, substr(a.text, 1, {n}), a.commune,"
    " a.lat, a.lon, a.author_name, a.created, a.updated, a.expires, a.sortie_at"
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
    if query.kind is not None:
        sql.add("a.kind = ?", query.kind.value)
    if query.category is not None:
        sql.add("a.category = ?", query.category.value)
    if query.commune is not None:
        sql.add("a.commune = ?", query.commune)
    return sql


def _flat_sql(geo: _Geo, sqlite: bool) -> tuple[str, list]:
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


def _geo_clause(geo: _Geo, sqlite: bool, km: float | None = None, *, indexed: bool = True):
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


def pg_tsquery(words: Sequence[str]) -> str:
    """A to_tsquery text: every word, in any of its forms (the stemmer misses some plurals)."""
    return " & ".join("(" + " | ".join(word_forms(word)) + ")" for word in words)


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


def _row_hit(row) -> Hit:
    return Hit(
        origin=bytes(row[0]), uid=bytes(row[1]), kind=_KINDS[row[2]], category=_CATEGORIES[row[3]],
        title=row[4], excerpt=row[5], commune=row[6], lat=row[7], lon=row[8],
        author_name=row[9], created=row[10], updated=row[11], expires=row[12],
        sortie_at=row[13],
    )  # fmt: skip


def _newest(conn: Connection, query: Query, words: list[str], geo: _Geo | None, now: int):
    sql = _base_filters(query, conn.dialect.name, now)
    limit, offset = query.per_page + 1, query.offset
    if geo is None:
        statement, params = _by_index(sql, words, limit, offset)
        return [_row_hit(r) for r in _render(conn, statement, params)]
    few_words = bool(words) and _word_matches(conn, sql.sqlite, words) < CANDIDATE_CAP
    few_places = not few_words and geo.share() < SMALL_SHARE
    clause, params = _geo_clause(geo, sql.sqlite, indexed=few_places)
    sql.add(clause, *params)
    if few_places:
        _words_clause(sql, words)
        order = "a.created DESC, a.rowid DESC" if sql.sqlite else "a.created DESC, a.id DESC"
        statement = (f"SELECT {_COLUMNS} FROM annonces a WHERE {sql.clause()}"
                     f" ORDER BY {order} LIMIT ? OFFSET ?")  # fmt: skip
        return [_row_hit(r) for r in _render(conn, statement, [*sql.params, limit, offset])]
    statement, all_params = _by_index(sql, words, limit, offset)
    return [_row_hit(r) for r in _render(conn, statement, all_params)]


def _nearest(conn: Connection, query: Query, words: list[str], geo: _Geo, now: int):
    """Nearest first: rings of points widened until full, communes in order of distance."""
    wanted = query.offset + query.per_page + 1
    base = _base_filters(query, conn.dialect.name, now)
    _words_clause(base, words)
    order = "a.created DESC, a.rowid DESC" if base.sqlite else "a.created DESC, a.id DESC"
    ranked: list[tuple[float, int, Hit]] = []
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
    ranked += [(row[-1], -row[10], _row_hit(row)) for row in rows]
    # Communes without a point: all at their centre's distance, newest first.
    from_communes = 0
    for d, code in geo.near_communes():
        sql = base.copy().add("a.lat IS NULL AND a.commune = ?", code)
        statement = f"SELECT {_COLUMNS} FROM annonces a WHERE {sql.clause()} ORDER BY {order} LIMIT ?"
        rows = list(_render(conn, statement, [*sql.params, wanted - from_communes]))
        ranked += [(d, -row[10], _row_hit(row)) for row in rows]
        from_communes += len(rows)
        if from_communes >= wanted:
            break
    ranked.sort(key=lambda item: (item[0], item[1]))
    return [hit for _, _, hit in ranked[query.offset : query.offset + query.per_page + 1]]


def _with_distance(hit: Hit, geo: _Geo | None, origin: Origin | None, communes) -> Hit:
    if origin is None:
        return hit
    if hit.lat is not None:
        lat, lon = hit.lat, hit.lon
    elif hit.commune in communes:
        lat, lon = communes[hit.commune]
    else:
        return hit
    return replace(hit, distance_km=haversine_km(origin.lat, origin.lon, lat, lon))


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
        geo = _Geo(query.origin, query.radius_km, communes, weights)
    if geo is not None and query.nearest:
        hits = _nearest(conn, query, words, geo, now)
    else:
        hits = _newest(conn, query, words, geo, now)
    has_next = len(hits) > query.per_page
    origin = distance_from or query.origin
    hits = [_with_distance(h, geo, origin, communes) for h in hits[: query.per_page]]
    return ResultPage(hits, has_next, words)


# --- The reader ------------------------------------------------------------------


class Reader:
    """Runs read functions written for a sync Connection, the fastest way per backend."""

    def __init__(self, db: Database, sync_engine: Engine | None) -> None:
        self.db = db
        self._sync = sync_engine

    async def run(self, fn: Callable, *args, **kwargs):
        if self._sync is not None:
            with self._sync.connect() as conn:
                return fn(conn, *args, **kwargs)
        async with self.db.engine.connect() as conn:
            return await conn.run_sync(lambda c: fn(c, *args, **kwargs))

    def close(self) -> None:
        if self._sync is not None:
            self._sync.dispose()


def open_reader(db: Database) -> Reader:
    if not db.is_sqlite:
        return Reader(db, None)
    url = db.engine.url.set(drivername="sqlite+pysqlite")
    engine = create_engine(url)
    event.listen(engine, "connect", _reader_pragmas)
    return Reader(db, engine)


def _reader_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA query_only=1")
    cursor.close()


# --- One annonce, for its page -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shown:
    """An annonce as its page shows it, whatever its state."""

    annonce: Annonce
    hidden: bool


def annonce_for_page(conn: Connection, origin: bytes, uid: bytes) -> Shown | None:
    row = conn.execute(
        select(annonces).where(annonces.c.origin == origin, annonces.c.uid == uid)
    ).first()
    if row is None:
        return None
    annonce = Annonce(
        origin=row.origin, uid=row.uid, rev=row.rev, kind=Kind(row.kind),
        category=Category(row.category), title=row.title, text=row.text, lang=row.lang,
        commune=row.commune, point=Point(row.lat, row.lon) if row.lat is not None else None,
        author_handle=row.author_handle, author_name=row.author_name, created=row.created,
        updated=row.updated, expires=row.expires, state=State(row.state),
        sortie_at=row.sortie_at,
    )  # fmt: skip
    return Shown(annonce, bool(row.hidden))
