"""Brand names through the HTTP API, on SQLite and PostgreSQL: ``POST /v1/brands`` under another
spelling of a stored brand's name replaces that brand's kit (200, never a second brand, also
when the spellings arrive at once), lookups by any spelling find it, a look-alike finds
nothing, and a name two brands share (data from before the rule) is a 409 naming both."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from brandloop.domain import BRAND_NAME
from brandloop.registry.db import Database
from brandloop.registry.models import BrandRow
from tests.api.http.conftest import Keys, assert_problem, both_databases, brand_kit

settings = pytest.fixture(name="settings")(both_databases)

RED = [
    {"hex": "#cc0000", "role": "primary", "name": "red"},
    {"hex": "#ffffff", "role": "background", "name": "white"},
]
SPELLINGS = ("acme coffee", "ACME COFFEE", "Acme_Coffee", "acme-coffee", "Acme.Coffee ")


def kit(name: str, palette: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {**brand_kit(), "name": name, **({"palette": palette} if palette else {})}


def legacy_twin(db: Database) -> None:
    """What migration 0900 leaves of two brands stored under one name: ``brand_legacy``
    ('acme coffee') beside the stored 'Acme Coffee', neither with its name key."""
    with db.engine.begin() as conn:
        conn.execute(sa.update(BrandRow).values(name_key=None))
        conn.execute(
            sa.insert(BrandRow).values(
                id="brand_legacy", tenant="acme", name="acme coffee", name_key=None,
                kit=kit("acme coffee", RED), created_at=sa.func.now(), updated_at=sa.func.now(),
            )
        )  # fmt: skip


def test_another_spelling_replaces_the_kit_of_the_brand_it_names(
    client: TestClient, keys: Keys
) -> None:
    admin = keys["Acme-Co", "admin"]
    created = client.post("/v1/brands", json=kit("Acme Coffee"), headers=admin)
    assert created.status_code == 201, created.text
    brand_id = created.json()["id"]
    replaced = client.post("/v1/brands", json=kit("acme coffee", RED), headers=admin)
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert (body["id"], body["name"], body["kit"]["name"]) == (
        brand_id,
        "Acme Coffee",
        "Acme Coffee",
    )
    assert [c["hex"] for c in body["kit"]["palette"]] == ["#cc0000", "#ffffff"]
    assert replaced.headers["Location"] == f"/v1/brands/{brand_id}"
    assert [b["id"] for b in client.get("/v1/brands", headers=admin).json()] == [brand_id]
    for ref in SPELLINGS:
        found = client.get(f"/v1/brands/{quote(ref)}", headers=admin)
        assert (found.status_code, found.json().get("id")) == (200, brand_id), ref
    for look_alike in ("\u0410cme Coffee", "Acme\u00a0Coffee", "AcmeCoffee"):
        assert_problem(
            client.get(f"/v1/brands/{quote(look_alike)}", headers=admin), 404, "not-found"
        )
    creator = keys["Acme-Co", "creator"]
    job = client.post(
        "/v1/generations?wait=60",
        json={"brief": "a cup", "brand": "ACME_COFFEE", "size": "64x64", "seed": 5},
        headers=creator,
    ).json()
    assert job["state"] in ("succeeded", "failed"), job
    trace = client.get(f"/v1/runs/{job['run_id']}/trace", headers=creator).json()
    prompts = [a["prompt"] for a in trace["attempts"]]
    assert prompts and all("#cc0000" in p and "#0f766e" not in p for p in prompts), prompts


def test_spellings_posted_at_once_make_one_brand(client: TestClient, keys: Keys) -> None:
    admin = keys["acme", "admin"]
    names = [*SPELLINGS, *SPELLINGS[:3]]
    start = threading.Barrier(len(names))

    def post(index: int) -> tuple[int, str]:
        body = kit(names[index], [{"hex": f"#0000{index:02x}", "role": "primary"}])
        start.wait()
        response = client.post("/v1/brands", json=body, headers=admin)
        return response.status_code, response.json()["id"]

    with ThreadPoolExecutor(len(names)) as pool:
        answers = list(pool.map(post, range(len(names))))
    assert sorted(status for status, _ in answers) == [200] * (len(names) - 1) + [201]
    assert len({brand_id for _, brand_id in answers}) == 1
    assert len(client.get("/v1/brands", headers=admin).json()) == 1


def test_a_name_two_brands_share_is_a_409_naming_both(
    make_client: Callable[..., TestClient], keys: Keys, db: Database
) -> None:
    client = make_client(workers=0)
    admin = keys["acme", "admin"]
    brand_id = client.post("/v1/brands", json=kit("Acme Coffee"), headers=admin).json()["id"]
    legacy_twin(db)
    for answer in (
        client.get("/v1/brands/acme%20coffee", headers=admin),
        client.post("/v1/brands", json=kit("ACME COFFEE", RED), headers=admin),
        client.post(
            "/v1/generations", json={"brief": "a cup", "brand": "Acme Coffee"}, headers=admin
        ),
        client.get("/v1/memory/notes", params={"brand": "acme-coffee"}, headers=admin),
    ):
        problem = assert_problem(answer, 409, "conflict")
        assert brand_id in problem["detail"] and "brand_legacy" in problem["detail"], problem
    for ref in (brand_id, "brand_legacy"):
        assert client.get(f"/v1/brands/{ref}", headers=admin).status_code == 200
    with db.engine.connect() as conn:
        kits = conn.execute(sa.select(BrandRow.id, BrandRow.kit).order_by(BrandRow.id)).all()
    assert [(i, k["name"]) for i, k in kits] == [
        (brand_id, "Acme Coffee"),
        ("brand_legacy", "acme coffee"),
    ], "a refused POST changed nothing"


def test_rename_over_http_tells_two_brands_apart(
    make_client: Callable[..., TestClient], keys: Keys, db: Database
) -> None:
    """``POST /v1/brands/{id}/rename`` (admin) is how an API user fixes a name two brands
    share: rename one by its id and the name works again; a taken name is 409, a malformed one
    422, another tenant's brand 404, a creator 403, and nothing is changed by a refusal."""
    client = make_client(workers=0)
    admin = keys["acme", "admin"]
    brand_id = client.post("/v1/brands", json=kit("Acme Coffee"), headers=admin).json()["id"]
    legacy_twin(db)
    other = keys["other", "admin"]
    refusals = [
        (client.post("/v1/brands/brand_legacy/rename", json={"name": "Red"}, headers=other), 404),
        (
            client.post(
                "/v1/brands/brand_legacy/rename",
                json={"name": "Red"},
                headers=keys["acme", "creator"],
            ),
            403,
        ),
        (
            client.post(
                "/v1/brands/brand_legacy/rename", json={"name": "ACME_COFFEE"}, headers=admin
            ),
            409,
        ),
        (client.post("/v1/brands/brand_legacy/rename", json={"name": "Ré d"}, headers=admin), 422),
        (client.post("/v1/brands/brand_legacy/rename", json={"name": ""}, headers=admin), 422),
        (client.post("/v1/brands/acme%20coffee/rename", json={"name": "Red"}, headers=admin), 409),
    ]
    for answer, status in refusals:
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
    renamed = client.post(
        "/v1/brands/brand_legacy/rename", json={"name": "Acme Coffee Red"}, headers=admin
    )
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["id"], renamed.json()["name"]) == ("brand_legacy", "Acme Coffee Red")
    assert client.get("/v1/brands/acme_coffee", headers=admin).json()["id"] == brand_id
    assert client.get("/v1/brands/acme-coffee-red", headers=admin).json()["id"] == "brand_legacy"


def test_renames_to_one_name_at_once_give_it_to_one_brand(client: TestClient, keys: Keys) -> None:
    """Two brands renamed at the same moment to spellings of one name: one gets it (200), the
    other is a 409 problem, never a 500 or two brands under one key."""
    admin = keys["acme", "admin"]
    ids = [
        client.post("/v1/brands", json=kit(name), headers=admin).json()["id"]
        for name in ("Acme Coffee", "Bloom Tea")
    ]
    spellings = ["Shared Name", "shared_name", "SHARED-NAME", "shared.name"] * 2
    start = threading.Barrier(len(spellings))

    def rename(index: int) -> tuple[int, str]:
        start.wait()
        answer = client.post(
            f"/v1/brands/{ids[index % 2]}/rename", json={"name": spellings[index]}, headers=admin
        )
        return answer.status_code, answer.headers["content-type"]

    with ThreadPoolExecutor(len(spellings)) as pool:
        answers = list(pool.map(rename, range(len(spellings))))
    assert {status for status, _ in answers} <= {200, 409}, answers
    assert all(t.startswith("application/problem+json") for s, t in answers if s == 409)
    holders = [b["id"] for b in client.get("/v1/brands", headers=admin).json()
               if b["name"].lower().replace("_", " ").replace("-", " ").replace(".", " ")
               == "shared name"]  # fmt: skip
    assert len(holders) == 1, holders
    assert client.get("/v1/brands/shared-name", headers=admin).json()["id"] == holders[0]


def test_the_rename_schema_states_the_name_rule_the_route_applies(
    client: TestClient, keys: Keys
) -> None:
    """Schemathesis (positive data acceptance) sent a schema-valid new name in another script
    and got a 422: the body's schema now carries the brand-name pattern, so what it accepts the
    route accepts, and a name outside it is refused by validation before the route runs."""
    schema = client.get("/openapi.json").json()["components"]["schemas"]["BrandRename"]
    assert schema["properties"]["name"]["pattern"] == BRAND_NAME
    admin = keys["acme", "admin"]
    brand_id = client.post("/v1/brands", json=kit("Acme Coffee"), headers=admin).json()["id"]
    for name in ("\U0006f02a\U000ab9a2", "Ré d", " lead", "-lead"):
        answer = client.post(f"/v1/brands/{brand_id}/rename", json={"name": name}, headers=admin)
        assert_problem(answer, 422, "validation")
    for name in ("0", "Acme Coffee 2.0", "a_b-c.d e"):
        answer = client.post(f"/v1/brands/{brand_id}/rename", json={"name": name}, headers=admin)
        assert answer.status_code == 200, answer.text
        assert answer.json()["name"] == name


def test_costs_count_a_renamed_brands_spend_under_its_name_now(
    client: TestClient, keys: Keys
) -> None:
    """A rename keeps the brand's id, so ``GET /v1/costs`` counts its runs before and after under
    the name it has now; a new brand that takes the old name is another brand, counted apart."""
    admin, creator = keys["Acme-Co", "admin"], keys["Acme-Co", "creator"]

    def run(brand: str, seed: int) -> float:
        job = client.post(
            "/v1/generations?wait=60",
            json={"brief": "a cup", "brand": brand, "size": "64x64", "seed": seed},
            headers=creator,
        ).json()
        assert job["state"] in ("succeeded", "failed"), job
        return float(client.get(f"/v1/runs/{job['run_id']}", headers=creator).json()["cost_usd"])

    brand_id = client.post("/v1/brands", json=kit("Acme Coffee"), headers=admin).json()["id"]
    before = run("Acme Coffee", 3)
    renamed = client.post(
        f"/v1/brands/{brand_id}/rename", json={"name": "Acme Roasters"}, headers=admin
    )
    assert renamed.status_code == 200, renamed.text
    after = run("acme roasters", 4)
    assert client.post("/v1/brands", json=kit("Acme Coffee", RED), headers=admin).status_code == 201
    newcomer = run("Acme Coffee", 5)
    assert min(before, after, newcomer) > 0
    report = client.get("/v1/costs", headers=admin).json()
    assert report["by_brand"] == pytest.approx(
        {"Acme Roasters": before + after, "Acme Coffee": newcomer}
    )
    assert report["runs"] == 3
    assert report["total_usd"] == pytest.approx(before + after + newcomer)


def test_a_name_spelt_like_a_brand_id_is_refused_and_never_takes_its_notes(
    make_client: Callable[..., TestClient], keys: Keys, db: Database
) -> None:
    """An outside tester renamed Nordlys to Acme's id (200), and listing Nordlys's notes moved
    Acme's notes onto Nordlys: the listing adopts notes kept under the brand's name (the key
    before 2026-12-04). Such a name is now 422, and a brand already stored under one (before
    the rule) adopts nothing."""
    client = make_client(use_memory=True)
    admin = keys["acme", "admin"]
    acme = client.post("/v1/brands", json=kit("Acme Coffee"), headers=admin).json()["id"]
    nordlys = client.post("/v1/brands", json=kit("Nordlys Outdoor"), headers=admin).json()["id"]
    note = client.post(
        "/v1/memory/notes", json={"brand": acme, "text": "always warm amber light"}, headers=admin
    )
    assert note.status_code == 201, note.text
    for name in (acme, acme.upper(), acme.replace("_", "-"), acme.replace("_", " ")):
        answer = client.post(f"/v1/brands/{nordlys}/rename", json={"name": name}, headers=admin)
        assert_problem(answer, 422, "validation")
        assert "spelt like a brand id" in answer.text
    assert_problem(client.post("/v1/brands", json=kit(acme), headers=admin), 422, "validation")
    with db.engine.begin() as conn:  # stored before the rule
        conn.execute(
            sa.update(BrandRow).where(BrandRow.id == nordlys).values(name=acme, kit=kit(acme))
        )

    listed = client.get("/v1/memory/notes", params={"brand": nordlys}, headers=admin)
    assert listed.status_code == 200 and listed.json() == []
    # its stored kit is still read: the brand works until it is renamed
    own = client.post(
        "/v1/memory/notes", json={"brand": nordlys, "text": "crisp air"}, headers=admin
    )
    assert own.status_code == 201, own.text
    listed = client.get("/v1/memory/notes", params={"brand": acme}, headers=admin)
    assert [n["id"] for n in listed.json()] == [note.json()["id"]]
    # a name that only looks a little like one is a name
    renamed = client.post(
        f"/v1/brands/{nordlys}/rename", json={"name": "brand cafe"}, headers=admin
    )
    assert renamed.status_code == 200, renamed.text
