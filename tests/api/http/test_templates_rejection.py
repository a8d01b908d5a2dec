"""Rejecting a template version over HTTP takes it out of every label that points to it, in the
verdict's transaction and under the template's lock, so no label is left on a rejected
version, also when a label move races the verdict; on both databases (an outside tester's
report, defect 1)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.registry import crud
from brandloop.registry.db import Database
from tests.api.http.conftest import Keys, assert_problem, both_databases
from tests.api.http.test_templates_concurrency import all_reach, at_once

settings = pytest.fixture(name="settings")(both_databases)

BODY = {"body": "{{ brief }}. {{ palette_clause }}", "model_hints": ["procedural/draft"]}
URL = "/v1/templates/rej-t"


def _second_in_review(client: TestClient, keys: Keys) -> tuple[dict[str, str], dict[str, str]]:
    """rej-t @1 approved, @2 in review (both by ana); the headers of ana and of lee."""
    ana, lee = keys.of("A", "ana", "creator"), keys.of("A", "lee", "approver")
    for version in (1, 2):
        made = client.post(f"{URL}/versions", json=BODY, headers=ana)
        assert made.status_code == 201 and made.json()["version"] == version, made.text
        assert client.post(f"{URL}/versions/{version}/submit", headers=ana).status_code == 200
    approved = client.post(f"{URL}/versions/1/review", json={"decision": "approve"}, headers=lee)
    assert approved.status_code == 200, approved.text
    return ana, lee


def _reject(client: TestClient, lee: dict[str, str]) -> Any:
    body = {"decision": "reject", "note": "off brand"}
    return client.post(f"{URL}/versions/2/review", json=body, headers=lee)


def _label_moves(db: Database, actor: str) -> dict[str, dict[str, Any]]:
    with db.session() as session:
        return {
            row.subject_id: row.detail
            for row in crud.list_audit(session, tenant="A")
            if row.action == "template.label_moved" and row.actor == actor
        }


def test_a_rejection_over_http_takes_the_version_out_of_its_labels(
    client: TestClient, keys: Keys, db: Database
) -> None:
    _, lee = _second_in_review(client, keys)
    for label, weights in (
        ("exp", {"1": 3, "2": 1}),
        ("staging", {"2": 1}),
        ("zero", {"1": 0, "2": 1}),  # its other version gets no traffic: nothing is left
    ):
        put = client.put(f"{URL}/labels/{label}", json={"weights": weights}, headers=lee)
        assert put.status_code == 200, put.text
    rejected = _reject(client, lee)
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected", rejected.text

    shown = client.get(URL, headers=lee).json()
    assert shown["label_weights"] == {"exp": {"1": 3.0}}
    assert shown["labels"] == {"exp": 1}
    reason = "rej-t@2 was rejected: off brand"
    moves = _label_moves(db, "lee")
    assert moves["rej-t:exp"] == {
        "label": "exp",
        "from": {"1": 3.0, "2": 1.0},
        "to": {"1": 3.0},
        "reason": reason,
    }
    assert moves["rej-t:staging"]["to"] is None and moves["rej-t:staging"]["reason"] == reason
    assert moves["rej-t:zero"] == {
        "label": "zero",
        "from": {"1": 0.0, "2": 1.0},
        "to": None,
        "reason": reason,
    }
    # and it cannot be labelled again, not even at weight 0
    for weights in ({"2": 1}, {"1": 1, "2": 0}):
        again = client.put(f"{URL}/labels/exp", json={"weights": weights}, headers=lee)
        assert_problem(again, 409, "conflict")
        assert "rej-t@2 was rejected and cannot be labelled" in again.json()["detail"]


def test_a_label_move_racing_the_rejection_never_leaves_the_label_on_it(
    client: TestClient, keys: Keys, db: Database
) -> None:
    """The label move reads @2 in review; the verdict, at the same moment, rejects it. Held
    at that read together (the old code: both got there, the move was stored after the
    verdict and the label pointed at the rejected @2), now one waits for the other's lock."""
    _, lee = _second_in_review(client, keys)
    start = client.put(f"{URL}/labels/exp", json={"weights": {"1": 1}}, headers=lee)
    assert start.status_code == 200, start.text

    def step(kind: str) -> Any:
        if kind == "reject":
            return _reject(client, lee)
        return client.put(f"{URL}/labels/exp", json={"weights": {"1": 1, "2": 1}}, headers=lee)

    with all_reach("from template_versions", 2, patience=2.0, parameter=2):
        rejected, moved = at_once(step, ["reject", "move"])
    assert rejected.status_code == 200, rejected.text
    assert moved.status_code in (200, 409), moved.text
    shown = client.get(URL, headers=lee).json()
    assert shown["label_weights"] == {"exp": {"1": 1.0}}
    if moved.status_code == 200:  # it came first, and the verdict took @2 out again
        assert _label_moves(db, "lee")["rej-t:exp"]["reason"] == "rej-t@2 was rejected: off brand"
    else:
        assert "rej-t@2 was rejected and cannot be labelled" in moved.json()["detail"]


def test_a_generation_through_a_label_left_only_on_rejected_versions_is_refused(
    client: TestClient, keys: Keys, db: Database, acme: dict[str, Any]
) -> None:
    """A label older code left on the rejected @2 (stored straight into the registry, as that
    code kept it): a generation through it is a 422 before any run or job is stored, never a
    run that fails at intake."""
    _, lee = _second_in_review(client, keys)
    assert _reject(client, lee).status_code == 200
    with db.session() as session:
        template = crud.get_template(session, tenant="A", name="rej-t")
        assert template is not None
        crud.set_label(
            session, template_id=template.id, label="old", weights={"2": 1.0}, actor="ana"
        )
    body = {"brief": "a steaming cup", "brand": "Acme Coffee", "template": "rej-t:old"}
    answer = client.post("/v1/generations", json=body, headers=keys["A", "creator"])
    problem = assert_problem(answer, 422, "bad-input")
    assert (
        "label 'old' of template 'rej-t' points to no version that may be used"
        in (problem["detail"])
    )
    assert client.get("/v1/runs", headers=lee).json() == []


def test_labels_older_code_left_on_a_rejected_version_read_as_runs_use_them(
    client: TestClient, keys: Keys, db: Database
) -> None:
    """Labels older code left on the rejected @2 (stored straight into the registry, as that
    code kept them): ``GET /v1/templates/rej-t`` and ``GET /v1/templates`` show each label as
    runs use it - the split without @2, a label with nothing else left not at all - as the
    rejection itself would have left them. The rows stay as stored."""
    _, lee = _second_in_review(client, keys)
    assert _reject(client, lee).status_code == 200
    stored = {"exp": {"1": 3.0, "2": 1.0}, "old": {"2": 1.0}, "zero": {"1": 0.0, "2": 1.0}}
    with db.session() as session:
        template = crud.get_template(session, tenant="A", name="rej-t")
        assert template is not None
        for label, weights in stored.items():
            crud.set_label(
                session, template_id=template.id, label=label, weights=weights, actor="ana"
            )
    viewer = keys["A", "viewer"]
    one = client.get(URL, headers=viewer)
    assert one.status_code == 200, one.text
    listed = client.get("/v1/templates", headers=viewer)
    assert listed.status_code == 200, listed.text
    (from_list,) = [t for t in listed.json() if t["name"] == "rej-t"]
    for template in (one.json(), from_list):
        assert template["labels"] == {"exp": 1}, template
        assert template["label_weights"] == {"exp": {"1": 3.0}}, template
    with db.session() as session:  # what is stored is not changed by reading it
        template_row = crud.get_template(session, tenant="A", name="rej-t")
        assert template_row is not None
        rows = {
            label: crud.get_label(session, template_id=template_row.id, label=label)
            for label in stored
        }
        assert {k: dict(r.weights) for k, r in rows.items() if r is not None} == stored
