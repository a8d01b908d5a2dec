"""The minors line at the door of every HTTP entry point that takes a brief, on SQLite and
PostgreSQL: ``POST /v1/generations`` (a template's render too), ``POST /v1/campaigns`` (any of
its assets) and a thread whose first message renders across the line refuse it as
``POST /v1/threads`` refuses a brief: 422 ``refused``, the same problem, an audit entry without
the text, and nothing stored - no job, run, campaign, thread, quota hold or budget, and no
idempotency record: a retry with the same ``Idempotency-Key`` is refused again, and a legal
request right after (with that key, for the whole daily quota) is accepted. They were 202, the
job refused only once its run started."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.tools.moderation.minors import AUDIT_ACTION
from tests.api.http.conftest import Keys, assert_problem, brand_kit

#: crosses the line on its own
CROSSING = "a kid in lingerie by the harbour"
#: a minor, harmless on its own; across the line once a template adds a pose to it
MINOR = "a ten year old girl at the beach"
POSE = "{{ brief }}, in a sultry, seductive pose, {{ palette_clause }}"
LEGAL = "a steaming cup of coffee on an oak table"
QUOTA = 1.0  # the tenant's daily quota: a legal request for all of it is accepted only if
# no refused request holds any of it


def _client(make_client: Callable[..., TestClient], keys: Keys) -> TestClient:
    """A replica whose jobs stay queued (their quota holds stay) under a $1 daily quota."""
    client = make_client(workers=0, daily_quota_usd=QUOTA)
    added = client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"])
    assert added.status_code in (200, 201), added.text
    # the shipped templates are stored on first use: before anything is counted
    assert client.get("/v1/templates", headers=keys["A", "viewer"]).is_success
    return client


def _stored(db: Database) -> dict[str, int]:
    """Rows of every table but the audit log (and the API keys the test makes as it goes)."""
    with db.engine.connect() as conn:
        return {
            table: int(conn.exec_driver_sql(f'SELECT count(*) FROM "{table}"').scalar_one())
            for table in sa.inspect(conn).get_table_names()
            if table not in ("audit_log", "api_keys")
        }


def _refusals(db: Database) -> list[Any]:
    with db.session() as session:
        return [r for r in crud.list_audit(session, tenant="A") if r.action == AUDIT_ACTION]


def _refused(answer: Any) -> dict[str, Any]:
    body = assert_problem(answer, 422, "refused")
    assert body["detail"].startswith("refused by moderation: sexual/minors"), body
    assert "idempotent-replayed" not in answer.headers
    return body


def _same_problem(one: dict[str, Any], other: dict[str, Any]) -> None:
    """The same problem but for where and which request it answers."""
    drop = ("instance", "request_id")
    assert {k: v for k, v in one.items() if k not in drop} == {
        k: v for k, v in other.items() if k not in drop
    }


def _campaign(*briefs: str, budget: float = QUOTA) -> dict[str, Any]:
    return {
        "name": "autumn",
        "brand": "Acme Coffee",
        "budget_usd": budget,
        "assets": [{"brief": b, "formats": ["64x64"]} for b in briefs],
    }


def test_generations_and_campaigns_refuse_a_brief_as_threads_do(
    make_client: Callable[..., TestClient], keys: Keys, db: Database
) -> None:
    client = _client(make_client, keys)
    ana = keys.of("A", "ana", "creator")
    before = _stored(db)
    by_thread = _refused(
        client.post("/v1/threads", json={"brand": "Acme Coffee", "message": CROSSING}, headers=ana)
    )
    keyed = {**ana, "Idempotency-Key": "door-1"}
    body = {"brief": CROSSING, "brand": "Acme Coffee", "size": "64x64", "budget_usd": QUOTA}
    for _ in range(2):  # the retry is refused again, not answered 202 from a record
        _same_problem(_refused(client.post("/v1/generations", json=body, headers=keyed)), by_thread)
    campaign = _campaign(LEGAL, CROSSING)
    _same_problem(_refused(client.post("/v1/campaigns", json=campaign, headers=ana)), by_thread)
    assert _stored(db) == before, "nothing stored"

    entries = _refusals(db)
    assert [(e.subject_type, e.subject_id) for e in entries] == [
        ("thread", "(new thread)"),
        ("generation", "(new generation)"),
        ("generation", "(new generation)"),
        ("campaign", "(new campaign)"),
    ]
    assert {e.actor for e in entries} == {"ana"}
    assert entries[1].detail["source"] == "brief"
    assert entries[1].detail["normalised_sha256"] == entries[0].detail["normalised_sha256"]
    assert all("harbour" not in str(e.detail) for e in entries)

    # the key the refusals used, for the whole quota: nothing holds any of it
    legal = client.post("/v1/generations", json={**body, "brief": LEGAL}, headers=keyed)
    assert legal.status_code == 202, legal.text
    again = client.post("/v1/generations", json={**body, "brief": LEGAL}, headers=keyed)
    assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == legal.json()["id"]


def test_a_template_render_across_the_line_is_refused_at_the_door(
    make_client: Callable[..., TestClient], keys: Keys, db: Database
) -> None:
    """The template and the brief each pass on their own; the prompt the run would render
    from them crosses the line: a generation naming the template is refused at the door, and
    so are a thread and a campaign once the brand's ``production`` template renders so."""
    client = _client(make_client, keys)
    creator, approver = keys["A", "creator"], keys["A", "approver"]
    added = client.post(
        "/v1/templates/pose/versions", json={"body": POSE, "message": "m"}, headers=creator
    )
    assert added.status_code == 201, added.text
    alone = {"brief": MINOR, "brand": "Acme Coffee", "size": "64x64", "budget_usd": QUOTA}
    before = _stored(db)
    _refused(client.post("/v1/generations", json={**alone, "template": "pose@1"}, headers=creator))
    assert _stored(db) == before
    assert [e.detail["source"] for e in _refusals(db)] == ["prompt"]

    # the brand's production label moved to the pose: every request renders with it
    added = client.post(
        "/v1/templates/brand-hero/versions", json={"body": POSE, "message": "m"}, headers=creator
    )
    version = added.json()["version"]
    assert client.post(
        f"/v1/templates/brand-hero/versions/{version}/submit", headers=creator
    ).is_success
    assert client.post(
        f"/v1/templates/brand-hero/versions/{version}/review",
        json={"decision": "approve", "note": "ok"},
        headers=approver,
    ).is_success
    assert client.put(
        "/v1/templates/brand-hero/labels/production",
        json={"weights": {str(version): 1.0}},
        headers=approver,
    ).is_success
    before = _stored(db)
    thread = {"brand": "Acme Coffee", "message": MINOR, "size": "64x64", "budget_usd": QUOTA}
    _refused(client.post("/v1/threads", json=thread, headers=creator))
    _refused(client.post("/v1/campaigns", json=_campaign(LEGAL, MINOR), headers=creator))
    assert _stored(db) == before
    assert client.get("/v1/threads", headers=creator).json() == []
    legal = client.post("/v1/generations", json={**alone, "brief": LEGAL}, headers=creator)
    assert legal.status_code == 202, legal.text


def _at_once(
    clients: Sequence[TestClient], posts: Sequence[tuple[str, dict[str, Any], dict[str, str]]]
) -> list[Any]:
    """Each (url, body, headers) POSTed at the same moment, spread over ``clients``."""
    start = threading.Barrier(len(posts))

    def post(index: int) -> Any:
        url, body, headers = posts[index]
        start.wait()
        return clients[index % len(clients)].post(url, json=body, headers=headers)

    with ThreadPoolExecutor(max_workers=len(posts)) as pool:
        return list(pool.map(post, range(len(posts))))


def test_refusals_at_once_on_two_replicas_hold_none_of_the_quota(
    make_client: Callable[..., TestClient], keys: Keys, db: Database
) -> None:
    """Eight refused submissions at the same moment (generations, with and without an
    Idempotency-Key, and campaigns), each for the whole daily quota, spread over two replicas:
    nothing is stored, eight refusals are audited, and a legal request for the whole quota is
    accepted right after - by either replica."""
    clients = [_client(make_client, keys), make_client(workers=0, daily_quota_usd=QUOTA)]
    creator = keys["A", "creator"]
    generation = {"brief": CROSSING, "brand": "Acme Coffee", "size": "64x64", "budget_usd": QUOTA}
    posts = [
        ("/v1/generations", generation, creator),
        ("/v1/generations", generation, {**creator, "Idempotency-Key": "same"}),
        ("/v1/generations", generation, {**creator, "Idempotency-Key": "same"}),
        ("/v1/generations", {**generation, "brief": f"{CROSSING}, at dusk"}, creator),
        ("/v1/campaigns", _campaign(CROSSING), creator),
        ("/v1/campaigns", _campaign(LEGAL, CROSSING), creator),
        ("/v1/campaigns", _campaign(CROSSING), {**creator, "Idempotency-Key": "camp"}),
        ("/v1/generations", generation, {**creator, "Idempotency-Key": "other"}),
    ]
    before = _stored(db)
    answers = _at_once(clients, posts)
    for answer in answers:
        if answer.status_code == 409:  # the same key while its twin was in flight
            assert_problem(answer, 409, "idempotency-in-flight")
        else:
            _refused(answer)
    assert sum(a.status_code == 422 for a in answers) >= len(posts) - 1
    assert _stored(db) == before
    assert len(_refusals(db)) == sum(a.status_code == 422 for a in answers)
    for client in clients:  # each replica, the same key again: refused, never a replay
        _refused(
            client.post(
                "/v1/generations", json=generation, headers={**creator, "Idempotency-Key": "same"}
            )
        )
    legal = clients[1].post("/v1/generations", json={**generation, "brief": LEGAL}, headers=creator)
    assert legal.status_code == 202, legal.text
    over = clients[0].post("/v1/generations", json={**generation, "brief": LEGAL}, headers=creator)
    assert_problem(over, 402, "quota-exceeded")  # the legal one holds the whole quota now
