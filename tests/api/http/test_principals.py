"""Principals, not keys: every key belongs to a named principal, review rules compare
principals, the audit log records them, and the API says whose a key is. On both databases."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.api.auth import list_principals
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.api.http.conftest import Keys, assert_problem, both_databases, brand_kit
from tests.api.test_cli import run_cli

settings = pytest.fixture(name="settings")(both_databases)

GEN = {"brief": "a steaming cup", "brand": "Acme Coffee", "size": "256x256"}


def _submitted_version(client: TestClient, author: dict[str, str], name: str) -> None:
    made = client.post(
        f"/v1/templates/{name}/versions", json={"body": "{{ brief }}"}, headers=author
    )
    assert made.status_code == 201, made.text
    submitted = client.post(f"/v1/templates/{name}/versions/1/submit", json={}, headers=author)
    assert submitted.status_code == 200, submitted.text


def test_a_second_key_of_the_author_cannot_approve_their_template(
    client: TestClient, keys: Keys, db: Database
) -> None:
    ana_first = keys.of("acme", "ana", "admin")
    ana_second = keys.of("acme", "ana", "approver")  # minted to approve her own work
    _submitted_version(client, ana_first, "hero")
    refused = client.post(
        "/v1/templates/hero/versions/1/review", json={"decision": "approve"}, headers=ana_second
    )
    assert "ana wrote hero@1" in assert_problem(refused, 409, "conflict")["detail"]
    # "Ana" is another principal than "ana", but not another reviewer: four eyes folds case
    for decision in ({"decision": "approve"}, {"decision": "reject", "note": "mine"}):
        refused = client.post(
            "/v1/templates/hero/versions/1/review",
            json=decision,
            headers=keys.of("acme", "Ana", "approver"),
        )
        detail = assert_problem(refused, 409, "conflict")["detail"]
        assert "ana wrote hero@1; Ana may not" in detail  # the stored author, then the caller
    approved = client.post(
        "/v1/templates/hero/versions/1/review",
        json={"decision": "approve"},
        headers=keys.of("acme", "raj", "approver"),
    )
    assert approved.status_code == 200, approved.text
    with db.session() as session:
        actors = [(r.action, r.actor) for r in crud.list_audit(session, tenant="acme")]
    assert ("template.approved", "raj") in actors
    assert not any(a == "template.approved" and actor.lower() == "ana" for a, actor in actors)
    assert ("template.submitted", "ana") in actors
    assert not any(actor.startswith("key_") for _, actor in actors if actor != "cli")


def test_concurrent_self_approvals_through_many_keys_are_all_refused(
    client: TestClient, keys: Keys
) -> None:
    author = keys.of("acme", "lee", "admin")
    _submitted_version(client, author, "banner")
    # lee's own keys, and keys of the look-alike principals Lee, LEE, lEe ...
    spellings = ("lee", "Lee", "LEE", "lEe", "leE", "LeE", "lee", "LEe")
    own_keys = [keys.of("acme", name, "approver") for name in spellings]

    def approve(headers: dict[str, str]) -> int:
        return client.post(
            "/v1/templates/banner/versions/1/review", json={"decision": "approve"}, headers=headers
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(approve, own_keys))
    assert statuses == [409] * 8
    version = client.get("/v1/templates/banner", headers=author).json()["versions"][0]
    assert version["status"] == "in_review"


def test_the_principal_who_asked_for_a_run_cannot_approve_it(
    make_client: Callable[..., TestClient], keys: Keys, tmp_path: Path, monkeypatch: Any
) -> None:
    policy = tmp_path / "agent.yaml"
    policy.write_text("review:\n  mode: always\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    client = make_client()
    mia_creator, mia_approver = keys.of("A", "mia", "admin"), keys.of("A", "mia", "approver")
    assert client.post("/v1/brands", json=brand_kit(), headers=mia_creator).status_code == 201
    job = client.post("/v1/generations?wait=60", json=GEN, headers=mia_creator).json()
    assert job["state"] == "awaiting_review", job
    path = f"/v1/review/runs/{job['run_id']}"
    refused = client.post(path, json={"decision": "approve"}, headers=mia_approver)
    assert "mia asked for run" in assert_problem(refused, 409, "conflict")["detail"]
    # nor under her name in another case (another principal, the same person)
    for name in ("Mia", "MIA"):
        refused = client.post(
            path, json={"decision": "approve"}, headers=keys.of("A", name, "approver")
        )
        detail = assert_problem(refused, 409, "conflict")["detail"]
        # the refusal names the stored requester, and who was refused
        assert "mia asked for run" in detail and f"; {name} may not approve it" in detail
    verdict = client.post(
        path, json={"decision": "approve"}, headers=keys.of("A", "raj", "approver")
    )
    assert verdict.status_code == 200, verdict.text
    assert verdict.json()["by"] == "raj" and verdict.json()["status"] == "succeeded"


def test_the_api_says_whose_key_it_is(client: TestClient, keys: Keys) -> None:
    admin = keys.of("acme_co", "ops@acme", "admin")
    me = client.get("/v1/keys/me", headers=admin)
    assert me.status_code == 200, me.text
    assert me.json() | {"key_id": "-"} == {
        "key_id": "-",
        "tenant": "acme_co",
        "principal": "ops@acme",
        "role": "admin",
    }
    # an admin mints a key for someone else, and by default for themself
    for_kim = client.post("/v1/keys", json={"role": "viewer", "principal": "kim"}, headers=admin)
    assert for_kim.status_code == 201 and for_kim.json()["principal"] == "kim"
    kim = {"Authorization": f"Bearer {for_kim.json()['key']}"}
    assert client.get("/v1/keys/me", headers=kim).json()["principal"] == "kim"
    own = client.post("/v1/keys", json={"role": "creator"}, headers=admin)
    assert own.status_code == 201 and own.json()["principal"] == "ops@acme"
    listed = {k["id"]: k["principal"] for k in client.get("/v1/keys", headers=admin).json()}
    assert listed[own.json()["id"]] == "ops@acme" and listed[for_kim.json()["id"]] == "kim"
    for bad in ("", "-lead", "a b", "system", "x" * 121, "ana\n"):
        response = client.post("/v1/keys", json={"role": "viewer", "principal": bad}, headers=admin)
        assert response.status_code in (400, 422), (bad, response.text)
    assert_problem(client.get("/v1/keys/me"), 401, "unauthorized")


def test_cli_keys_create_needs_a_principal(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    code, out, _ = run_cli(
        capsys,
        *["keys", "create", "--tenant", "Acme-Co", "--principal", "Ana", "--role", "admin"],
        "--json",
    )
    assert code == 0, out
    body = json.loads(out)
    assert (body["tenant"], body["principal"], body["role"]) == ("Acme-Co", "Ana", "admin")
    code, out, _ = run_cli(capsys, "keys", "list", "--tenant", "Acme-Co", "--json")
    assert [k["principal"] for k in json.loads(out)] == ["Ana"]
    code, _, err = run_cli(capsys, "keys", "create", "--tenant", "acme", "--role", "admin")
    assert code == 2 and "principal" in err
    for blank in ("", "   "):  # an empty name is a bad name, never "no principal"
        code, _, err = run_cli(
            capsys, "keys", "create", "--tenant", "acme", "--principal", blank, "--role", "admin"
        )
        assert code == 2, (blank, err)
        assert (
            err == f"brandloop: error: principal {blank!r} must be 1-120 letters, digits, "
            "'_', '.', '@' or '-', starting with a letter or digit\n"
        )
        code, _, link_err = run_cli(
            capsys, "studio", "link", "--tenant", "acme", "--principal", blank
        )
        assert (code, link_err) == (2, err), "keys create and studio link refuse it alike"
    for args in (
        ["--tenant", "acme", "--principal", "a b", "--role", "admin"],
        ["--tenant", "acme", "--principal", "system", "--role", "admin"],
        ["--tenant", " acme", "--principal", "ana", "--role", "admin"],
        ["--tenant", "acmé", "--principal", "ana", "--role", "admin"],
        ["--tenant", "acme", "--principal", "ana", "--role", "owner"],
    ):
        code, _, err = run_cli(capsys, "keys", "create", *args)
        assert code == 2, (args, err)
        assert len(err.strip().splitlines()) == 1, err
    code, out, _ = run_cli(capsys, "keys", "list", "--tenant", "acme", "--json")
    assert json.loads(out) == [], "a refused key leaves nothing behind"


@pytest.mark.parametrize("name", ["system", "SYSTEM", "System", "sYsTeM"])
def test_reserved_principal_names_are_reserved_in_every_case(
    capsys: pytest.CaptureFixture[str],
    make_client: Callable[..., TestClient],
    keys: Keys,
    db: Database,
    name: str,
) -> None:
    """``system`` writes audit entries of its own and review compares principals ignoring
    case, so ``SYSTEM`` is as reserved as ``system``: 422 at POST /v1/keys, exit 2 at
    ``brandloop keys create``, and nothing made either way (an outside tester minted one)."""
    client = make_client()
    admin = keys.of("A", "ops", "admin")
    answer = client.post("/v1/keys", json={"role": "viewer", "principal": name}, headers=admin)
    problem = assert_problem(answer, 422, "bad-input")
    assert "reserved" in problem["detail"]
    code, _, err = run_cli(
        capsys, "keys", "create", "--tenant", "A", "--principal", name, "--role", "admin"
    )
    assert code == 2, err
    assert err == (
        f"brandloop: error: principal {name!r} is reserved for brandloop itself "
        "(in any case: system)\n"
    )
    with db.session() as session:
        assert [p.name for p in list_principals(session, tenant="A")] == ["ops"]
