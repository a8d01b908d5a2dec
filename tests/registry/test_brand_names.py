"""A brand name is one identity per tenant, compared ignoring case and separators (its slug,
``brandloop.domain.brand_key``), on SQLite and PostgreSQL: storing a kit under another spelling
updates the brand it names, a lookup never reaches a brand the name does not name, concurrent
adds of one name make one brand, and a rename keeps the brand."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from brandloop.domain import BrandKit, PaletteColour, brand_key, brand_key_of
from brandloop.errors import BadInputError, ConflictError, NotFoundError
from brandloop.policies.brandkit import load_brand_kit
from brandloop.registry import crud
from brandloop.registry.db import Database

#: other spellings of "Acme Coffee": case, '_', '-', '.', doubled and trailing blanks
SPELLINGS = (
    "acme coffee",
    "ACME COFFEE",
    "AcMe CoFfEe",
    "Acme_Coffee",
    "Acme-Coffee",
    "acme.coffee",
    "Acme  Coffee ",
    "Acme -_ Coffee",
)
#: names that are not "Acme Coffee": other letters, or letters joined without a separator
OTHER_NAMES = ("AcmeCoffee", "Acme Coffees", "Acme Coffee 2", "Acme Cofee", "A cme Coffee")
#: text that is no brand name at all, though it may look like one
NOT_NAMES = (
    "\u0410cme Coffee",  # Cyrillic capital A
    "Acme Co\uff46fee",  # full-width f
    "Acme\u00a0Coffee",  # no-break space
    "Acme\tCoffee",
    "Acme Coffee\n",
    "Acme Coff\u00e9e",
    "",
    "   ",
    "-_.",
)


def kit_named(acme: BrandKit, name: str, hex_: str = "#cc0000") -> BrandKit:
    palette = [PaletteColour(hex=hex_, role="primary", name="one")]
    return acme.model_copy(update={"name": name, "palette": palette})


@pytest.fixture
def acme(acme_kit_path: Path) -> BrandKit:
    return load_brand_kit(acme_kit_path)


def test_the_key_is_the_slug_that_names_the_policy_file(acme: BrandKit) -> None:
    for name in ("Acme Coffee", *SPELLINGS):
        assert brand_key(name) == brand_key_of(name) == "acme-coffee"
        assert kit_named(acme, name).slug == "acme-coffee"
    assert {brand_key(n) for n in OTHER_NAMES} == {
        "acmecoffee",
        "acme-coffees",
        "acme-coffee-2",
        "acme-cofee",
        "a-cme-coffee",
    }
    for text in NOT_NAMES:
        assert brand_key_of(text) is None, repr(text)


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_kit_under_another_spelling_updates_the_brand_it_names(
    db: Database, acme: BrandKit, spelling: str
) -> None:
    with db.session() as session:
        first = crud.store_brand(session, tenant="Acme-Co", kit=acme)
    with db.session() as session:
        again = crud.store_brand(session, tenant="Acme-Co", kit=kit_named(acme, spelling))
        assert (again.change, again.row.id) == ("updated", first.row.id)
    with db.session() as session:
        (row,) = crud.list_brands(session, tenant="Acme-Co")
        kit = crud.brand_kit(row)
        assert (row.id, row.name, kit.name) == (first.row.id, "Acme Coffee", "Acme Coffee")
        assert [c.hex for c in kit.palette] == ["#cc0000"], "the kit given is the kit stored"
        for ref in ("Acme Coffee", *SPELLINGS):
            found = crud.get_brand(session, tenant="Acme-Co", ref=ref)
            assert found is not None and found.id == row.id, ref
        audit = crud.list_audit(session, tenant="Acme-Co", subject_id=row.id)
        assert [(a.action, a.detail) for a in audit] == [
            ("brand.created", {}),
            ("brand.updated", {"kit_name": spelling}),
        ]
    with db.session() as session:  # the same kit again: nothing to record
        same = crud.store_brand(session, tenant="Acme-Co", kit=kit_named(acme, spelling))
        assert same.change == "unchanged"


def test_other_names_are_other_brands_and_look_alikes_name_none(
    db: Database, acme: BrandKit
) -> None:
    with db.session() as session:
        acme_id = crud.store_brand(session, tenant="t", kit=acme).row.id
        ids = {
            n: crud.store_brand(session, tenant="t", kit=kit_named(acme, n)).row.id
            for n in OTHER_NAMES
        }
        kiosk = crud.store_brand(session, tenant="t", kit=kit_named(acme, "Kiosk")).row.id
    assert len({acme_id, kiosk, *ids.values()}) == 2 + len(OTHER_NAMES)
    with db.session() as session:
        for name, brand_id in ids.items():
            assert crud.get_brand(session, tenant="t", ref=name).id == brand_id  # type: ignore[union-attr]
        for text in NOT_NAMES:
            assert crud.get_brand(session, tenant="t", ref=text) is None, repr(text)
        assert crud.get_brand(session, tenant="t", ref="\u212aiosk") is None  # Kelvin sign
        assert crud.get_brand(session, tenant="t", ref="kiosk").id == kiosk  # type: ignore[union-attr]
        assert crud.get_brand(session, tenant="T", ref="Acme Coffee") is None, "tenants: exact"


def test_concurrent_adds_of_one_name_make_one_brand(db: Database, acme: BrandKit) -> None:
    names = [*SPELLINGS[:4], *SPELLINGS[:4]]  # other spellings, and the same one twice
    start = threading.Barrier(len(names))

    def add(index: int) -> crud.StoredBrand:
        kit = kit_named(acme, names[index], hex_=f"#0000{index:02x}")
        start.wait()
        with db.session() as session:
            return crud.store_brand(session, tenant="acme", kit=kit)

    with ThreadPoolExecutor(len(names)) as pool:
        stored = list(pool.map(add, range(len(names))))
    assert sorted(s.change for s in stored) == ["created"] + ["updated"] * (len(names) - 1)
    assert len({s.row.id for s in stored}) == 1
    with db.session() as session:
        (row,) = crud.list_brands(session, tenant="acme")
        assert row.name == names[next(i for i, s in enumerate(stored) if s.change == "created")]
        actions = sorted(a.action for a in crud.list_audit(session, tenant="acme"))
        assert actions == ["brand.created"] + ["brand.updated"] * (len(names) - 1)


def test_rename_keeps_the_brand_and_refuses_a_name_another_brand_has(
    db: Database, acme: BrandKit
) -> None:
    with db.session() as session:
        acme_id = crud.store_brand(session, tenant="t", kit=acme).row.id
        other_id = crud.store_brand(session, tenant="t", kit=kit_named(acme, "Nordlys")).row.id
    with db.session() as session:
        for taken in ("Nordlys", "nordlys", "NORDLYS "):
            with pytest.raises(ConflictError, match=f"taken by {other_id}"):
                crud.rename_brand(session, tenant="t", ref=acme_id, name=taken)
        for bad in ("Café", " Acme", "", "x" * 81):
            with pytest.raises(BadInputError, match="must be 1-80 ASCII"):
                crud.rename_brand(session, tenant="t", ref="acme coffee", name=bad)
        with pytest.raises(NotFoundError):
            crud.rename_brand(session, tenant="t", ref="no such brand", name="Whatever")
    with db.session() as session:
        row = crud.rename_brand(session, tenant="t", ref="ACME_COFFEE", name="Acme Roasters")
        assert (row.id, row.name, crud.brand_kit(row).slug) == (
            acme_id,
            "Acme Roasters",
            "acme-roasters",
        )
    with db.session() as session:
        assert crud.get_brand(session, tenant="t", ref="acme coffee") is None
        assert crud.get_brand(session, tenant="t", ref="acme-roasters").id == acme_id  # type: ignore[union-attr]
        respelt = crud.rename_brand(session, tenant="t", ref=acme_id, name="ACME Roasters")
        assert respelt.name == "ACME Roasters", "another spelling of its own name is allowed"
        actions = [a.detail for a in crud.list_audit(session, tenant="t", subject_id=acme_id)]
        assert actions[-2:] == [
            {"from": "Acme Coffee", "to": "Acme Roasters"},
            {"from": "Acme Roasters", "to": "ACME Roasters"},
        ]


def test_runs_filtered_by_brand_name_are_the_brands_whatever_the_spelling(
    db: Database, acme: BrandKit
) -> None:
    with db.session() as session:
        acme_row = crud.store_brand(session, tenant="t", kit=acme).row
        other = crud.store_brand(session, tenant="t", kit=kit_named(acme, "AcmeCoffee")).row
        for run_id, row in (("run_a", acme_row), ("run_b", other)):
            crud.create_run(
                session,
                run_id=run_id,
                tenant="t",
                brand_id=row.id,
                brand_name=row.name,
                brief="b",
                request={},
            )
    with db.session() as session:
        for ref in ("Acme Coffee", "acme_coffee", acme_row.id):
            runs = crud.list_runs(session, tenant="t", where=crud.RunFilter(brand=ref))
            assert [r.id for r in runs] == ["run_a"], ref
        assert crud.count_runs(session, tenant="t", where=crud.RunFilter(brand="ACMECOFFEE")) == 1
        assert (
            crud.list_runs(session, tenant="t", where=crud.RunFilter(brand="\u0410cme Coffee"))
            == []
        )
