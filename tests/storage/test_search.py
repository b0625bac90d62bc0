"""Full-text and distance search, on SQLite (FTS5) and PostgreSQL (tsvector)."""

from __future__ import annotations

import pytest

from protocol.annonce import Category, Kind, Point, State
from protocol.identity import NodeKey
from storage import annonces as store
from storage import search
from storage.peers import block_origin
from storage.search import Origin, Query
from tests.factories import NOW, make_signed, next_revision

KEY = NodeKey.from_seed(b"\x11" * 32)
OTHER = NodeKey.from_seed(b"\x12" * 32)

# Centres in hundredths of a degree: Agen, Layrac (~9 km south), Astaffort (~16 km).
COMMUNES = {"47001": (4420.105, 63.02), "47145": (4412.344, 65.964),
            "47015": (4406.07, 65.396)}  # fmt: skip
AGEN = Origin(4420.105, 63.02)


async def find(db, query: Query, *, now: int = NOW, **kwargs):
    return await db.read(search.run_search, query, now=now, communes=COMMUNES, **kwargs)


async def titles(db, query: Query, **kwargs) -> list[str]:
    return [hit.title for hit in (await find(db, query, **kwargs)).hits]


async def put(db, *signed):
    await db.write(store.store_revisions, list(signed), now=NOW)
    return signed[0] if len(signed) == 1 else signed


def test_word_forms_cover_french_plurals():
    assert set(search.word_forms("jardins")) >= {"jardins", "jardin"}
    assert set(search.word_forms("jardin")) >= {"jardin", "jardins"}
    assert set(search.word_forms("chevaux")) >= {"chevaux", "cheval"}
    assert set(search.word_forms("cheval")) >= {"cheval", "chevaux"}
    assert set(search.word_forms("gateau")) >= {"gateau", "gateaux"}
    assert search.query_words("Le JARDIN, de l'Été!") == ["jardin", "ete"]


def test_query_words_never_carry_fts_syntax():
    words = search.query_words('tomates" OR * NEAR( ^col:x - "')
    assert search.fts_expression(words).count('"') % 2 == 0
    assert all(w.isalnum() for w in words)


async def test_words_ignore_accents_case_and_plurals(db):
    await put(db, make_signed(KEY, title="Cours de guitare", text="Pour débutants.", created=NOW - 30),
              make_signed(KEY, title="Tonte de pelouse", text="Les jardins du quartier.", created=NOW - 20),
              make_signed(KEY, title="Gâteaux maison", text="Je prête mon four.", created=NOW - 10))  # fmt: skip
    assert await titles(db, Query(text="DEBUTANT")) == ["Cours de guitare"]
    assert await titles(db, Query(text="jardin")) == ["Tonte de pelouse"]
    assert await titles(db, Query(text="gateau")) == ["Gâteaux maison"]
    assert await titles(db, Query(text="guitares débutant")) == ["Cours de guitare"]
    assert await titles(db, Query(text="guitare pelouse")) == []


async def test_newest_first_with_pagination(db):
    for i in range(5):
        await put(db, make_signed(KEY, title=f"Annonce numéro {i}", created=NOW - 100 + i))
    page1 = await find(db, Query(text="annonce", per_page=2))
    assert [h.title for h in page1.hits] == ["Annonce numéro 4", "Annonce numéro 3"]
    assert page1.has_next
    page3 = await find(db, Query(text="annonce", per_page=2, page=3))
    assert [h.title for h in page3.hits] == ["Annonce numéro 0"] and not page3.has_next
    listed = await find(db, Query(per_page=3))
    assert [h.title for h in listed.hits] == ["Annonce numéro 4", "Annonce numéro 3",
                                              "Annonce numéro 2"]  # fmt: skip


async def test_filters_kind_category_commune(db):
    await put(db, make_signed(KEY, title="Offre service", kind=Kind.OFFER),
              make_signed(KEY, title="Demande objet", kind=Kind.REQUEST, category=Category.OBJET,
                          commune="47145"))  # fmt: skip
    assert await titles(db, Query(kind=Kind.REQUEST)) == ["Demande objet"]
    assert await titles(db, Query(category=Category.SERVICE)) == ["Offre service"]
    assert await titles(db, Query(commune="47145")) == ["Demande objet"]
    assert await titles(db, Query(text="objet", kind=Kind.OFFER)) == []


async def test_withdrawn_fulfilled_hidden_and_expired_are_never_found(db):
    kept = make_signed(KEY, title="Vélo à prêter")
    gone = make_signed(KEY, title="Vélo retiré")
    done = make_signed(KEY, title="Vélo donné")
    old = make_signed(KEY, title="Vélo expiré", created=NOW - 10 * 86400,
                      updated=NOW - 10 * 86400, expires=NOW - 1)  # fmt: skip
    await put(db, kept, gone, done, old)
    await put(db, next_revision(KEY, gone, state=State.WITHDRAWN, title="", text=""),
              next_revision(KEY, done, state=State.FULFILLED))  # fmt: skip
    assert await titles(db, Query(text="vélo")) == ["Vélo à prêter"]
    assert await titles(db, Query()) == ["Vélo à prêter"]
    async with db.engine.begin() as conn:
        await conn.execute(store.annonces.update().values(hidden=True))
    assert await titles(db, Query(text="vélo")) == []


async def test_a_new_revision_replaces_the_indexed_words(db):
    first = await put(db, make_signed(KEY, title="Prête une tondeuse"))
    await put(db, next_revision(KEY, first, title="Prête une perceuse"))
    assert await titles(db, Query(text="tondeuse")) == []
    assert await titles(db, Query(text="perceuse")) == ["Prête une perceuse"]


async def test_purge_and_block_take_annonces_out_of_the_index(db):
    await put(db, make_signed(KEY, title="Confitures maison", expires=NOW + 3600),
              make_signed(OTHER, title="Confitures du voisin"))  # fmt: skip
    assert await db.write(store.purge_expired, NOW + 3600) == 1
    await db.write(block_origin, OTHER.node_id, "spam", NOW)
    assert await titles(db, Query(text="confiture")) == []
    # The index still accepts new documents after those deletions.
    await put(db, make_signed(KEY, title="Confitures de prunes"))
    assert await titles(db, Query(text="confitures"), now=NOW + 3600) == ["Confitures de prunes"]


async def test_distance_uses_points_then_commune_centres(db):
    near_point = make_signed(KEY, title="Près du pont", commune=None,
                             point=Point(4420, 63), created=NOW - 1)  # fmt: skip
    layrac = make_signed(KEY, title="À Layrac", commune="47145", created=NOW - 2)
    astaffort = make_signed(KEY, title="À Astaffort", commune="47015", created=NOW - 3)
    unknown = make_signed(KEY, title="Commune inconnue", commune="47999", created=NOW - 4)
    await put(db, near_point, layrac, astaffort, unknown)
    assert await titles(db, Query(origin=AGEN, radius_km=5)) == ["Près du pont"]
    assert await titles(db, Query(origin=AGEN, radius_km=10)) == ["Près du pont", "À Layrac"]
    result = await find(db, Query(origin=AGEN, radius_km=20, nearest=True))
    assert [h.title for h in result.hits] == ["Près du pont", "À Layrac", "À Astaffort"]
    distances = [h.distance_km for h in result.hits]
    assert distances[0] < 1 and 8 < distances[1] < 10 and 15 < distances[2] < 17
    assert await titles(db, Query(text="layrac", origin=AGEN, radius_km=20)) == ["À Layrac"]
    assert await titles(db, Query(origin=AGEN, radius_km=20, nearest=True,
                                  category=Category.OBJET)) == []  # fmt: skip


@pytest.mark.parametrize("nearest", [False, True])
async def test_distance_pagination_is_consistent(db, nearest):
    batch = [make_signed(KEY, title=f"Point {i}", commune=None, point=Point(4420 + i % 7, 63),
                         created=NOW - i) for i in range(12)]  # fmt: skip
    batch += [make_signed(KEY, title=f"Agen {i}", commune="47001", created=NOW - 50 - i)
              for i in range(5)]  # fmt: skip
    await put(db, *batch)
    seen = []
    for page in (1, 2, 3, 4):
        result = await find(db, Query(origin=AGEN, radius_km=15, nearest=nearest,
                                      page=page, per_page=5))  # fmt: skip
        seen += [h.title for h in result.hits]
        if not result.has_next:
            break
    assert sorted(seen) == sorted(s.annonce.title for s in batch)
    if nearest:
        hits = []
        for page in (1, 2, 3, 4):
            hits += (await find(db, Query(origin=AGEN, radius_km=15, nearest=True,
                                          page=page, per_page=5))).hits  # fmt: skip
        assert [h.distance_km for h in hits] == sorted(h.distance_km for h in hits)


@pytest.mark.parametrize("nearest", [False, True])
async def test_listed_latitudes_and_a_latitude_range_find_the_same(db, nearest, monkeypatch):
    """Short bands of latitude are listed value by value; long ones are a range."""
    batch = [make_signed(KEY, title=f"Point {i}", commune=None,
                         point=Point(4420 + (i * 7) % 41 - 20, 63 + (i * 5) % 23 - 11),
                         created=NOW - i) for i in range(40)]  # fmt: skip
    await put(db, *batch)
    query = Query(origin=AGEN, radius_km=20, nearest=nearest, per_page=50)
    listed = await titles(db, query)
    monkeypatch.setattr(search, "LISTED_LATITUDES", 0)
    ranged = await titles(db, query)
    assert listed == ranged and 10 < len(listed) < 40  # some out of the radius
