"""Template writes at once over HTTP, on both databases: parallel new versions of one template
(its first included) each get the next free number, parallel label moves each record what
they replaced; never a 500 (an outside tester's report, defects 2 and 4).

The races are made certain, not likely: a SQLAlchemy event holds each request at the statement
the race turns on (the latest version's number, the label's current value) until all of them
have reached it, unless a lock keeps the others from getting there (then it lets go after a
moment)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import Engine

from brandloop.registry import crud
from brandloop.registry.db import Database
from tests.api.http.conftest import Keys, both_databases

settings = pytest.fixture(name="settings")(both_databases)

BODY = {"body": "{{ brief }}. {{ palette_clause }}", "model_hints": ["procedural/draft"]}
N = 4


@contextmanager
def all_reach(
    fragment: str, parties: int, patience: float = 3.0, parameter: str | None = None
) -> Iterator[None]:
    """Hold the first ``parties`` statements containing ``fragment`` (and run with
    ``parameter``, if given), from any engine and thread, until all of them have run; a lock
    that keeps the others away ends the wait after ``patience`` seconds."""
    barrier = threading.Barrier(parties)
    seen = 0
    guard = threading.Lock()

    def hold(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        nonlocal seen
        if fragment not in statement.lower():
            return
        values = parameters.values() if isinstance(parameters, dict) else parameters
        if parameter is not None and parameter not in list(values or ()):
            return
        with guard:
            seen += 1
            mine = seen
        if mine <= parties:
            with suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=patience)

    event.listen(Engine, "after_cursor_execute", hold)
    try:
        yield
    finally:
        event.remove(Engine, "after_cursor_execute", hold)


def at_once(call: Any, arguments: list[Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=len(arguments)) as pool:
        return list(pool.map(call, arguments))


def statuses(responses: list[Any]) -> list[int]:
    return sorted(r.status_code for r in responses)


def test_parallel_new_versions_each_get_the_next_number(client: TestClient, keys: Keys) -> None:
    ana = keys.of("A", "ana", "creator")
    first = client.post("/v1/templates/t1/versions", json=BODY, headers=ana)
    assert first.status_code == 201, first.text
    url = "/v1/templates/t1/versions"
    with all_reach("max(template_versions.version)", N):
        answers = at_once(
            lambda i: client.post(url, json={**BODY, "message": f"m{i}"}, headers=ana), range(N)
        )
    assert statuses(answers) == [201] * N, [a.text for a in answers]
    assert sorted(a.json()["version"] for a in answers) == [2, 3, 4, 5]
    listed = client.get("/v1/templates/t1", headers=ana).json()
    assert [v["version"] for v in listed["versions"]] == [1, 2, 3, 4, 5]
    assert sorted(v["message"] for v in listed["versions"][1:]) == [f"m{i}" for i in range(N)]


def test_parallel_first_versions_of_a_new_template_all_succeed(
    client: TestClient, keys: Keys
) -> None:
    """The first POST creates the template and the others add versions to it, as one after
    another would; none is told to use a CLI command (the old 422) or gets a 500."""
    ana = keys.of("A", "ana", "creator")
    client.get("/v1/templates", headers=ana)  # the shipped templates are seeded
    url = "/v1/templates/t2/versions"
    with all_reach("from templates", N, parameter="t2"):
        answers = at_once(lambda _: client.post(url, json=BODY, headers=ana), range(N))
    assert statuses(answers) == [201] * N, [a.text for a in answers]
    assert sorted(a.json()["version"] for a in answers) == [1, 2, 3, 4]
    messages = {a.json()["version"]: a.json()["message"] for a in answers}
    assert messages[1] == "first version" and messages[4] == "(no message)"


def _approved_versions(client: TestClient, keys: Keys, name: str, count: int) -> dict[str, str]:
    ana, lee = keys.of("A", "ana", "creator"), keys.of("A", "lee", "approver")
    for version in range(1, count + 1):
        made = client.post(f"/v1/templates/{name}/versions", json=BODY, headers=ana)
        assert made.status_code == 201 and made.json()["version"] == version, made.text
        path = f"/v1/templates/{name}/versions/{version}"
        assert client.post(f"{path}/submit", headers=ana).status_code == 200
        review = client.post(f"{path}/review", json={"decision": "approve"}, headers=lee)
        assert review.status_code == 200, review.text
    return lee


def _moves(db: Database, subject: str) -> list[tuple[Any, Any]]:
    with db.session() as session:
        rows = crud.list_audit(session, tenant="A", subject_id=subject)
        return [
            (r.detail["from"], r.detail["to"]) for r in rows if r.action.endswith("label_moved")
        ]


WEIGHTS = [{"1": 1.0}, {"2": 1.0}, {"3": 1.0}, {"1": 1.0, "2": 1.0}]


@pytest.mark.parametrize("label", ["canary", "production"])
def test_parallel_label_moves_are_serialised_with_a_true_audit_trail(
    client: TestClient, keys: Keys, db: Database, label: str
) -> None:
    """A new label's first moves (the old code: 500, IntegrityError) and an existing label's
    moves (the old code: several audit rows claiming to replace the same value)."""
    lee = _approved_versions(client, keys, "lab-t", 3)
    url = f"/v1/templates/lab-t/labels/{label}"
    if label == "production":
        start = client.put(url, json={"weights": {"1": 90, "2": 10}}, headers=lee)
        assert start.status_code == 200, start.text
    with all_reach("from template_labels", N):
        answers = at_once(lambda w: client.put(url, json={"weights": w}, headers=lee), WEIGHTS)
    assert statuses(answers) == [200] * N, [a.text for a in answers]
    moves = _moves(db, f"lab-t:{label}")
    assert len(moves) == N + (label == "production")
    # each move replaced what the one before it set: the trail is one chain
    assert moves[0][0] is None
    for (_, before_to), (after_from, _) in itertools.pairwise(moves):
        assert after_from == before_to, moves
    assert sorted(map(str, (to for _, to in moves[-N:]))) == sorted(map(str, WEIGHTS))
    final = client.get("/v1/templates/lab-t", headers=lee).json()["label_weights"][label]
    assert final == moves[-1][1]


def test_parallel_submits_of_one_draft_submit_it_once(
    client: TestClient, keys: Keys, db: Database
) -> None:
    """draft -> in_review happens once: the old code let every submit that read the draft pass
    (6 of 20 on SQLite, 15 of 20 on PostgreSQL, each audited), and a submit that had read
    ``draft`` wrote ``in_review`` over a rejection committed meanwhile - the rejected version
    was then approved and moved to production (outside tester)."""
    ana = keys.of("A", "ana", "creator")
    made = client.post("/v1/templates/sub-t/versions", json=BODY, headers=ana)
    assert made.status_code == 201, made.text
    url = "/v1/templates/sub-t/versions/1/submit"
    with all_reach("from template_versions", N):
        answers = at_once(lambda _: client.post(url, headers=ana), list(range(N)))
    assert statuses(answers) == [200] + [409] * (N - 1), [a.text for a in answers]
    with db.session() as session:
        rows = crud.list_audit(session, tenant="A", subject_id="sub-t@1")
        assert [r.action for r in rows].count("template.submitted") == 1, rows


def test_a_submit_after_a_rejection_is_refused_and_the_rejection_stands(
    client: TestClient, keys: Keys
) -> None:
    ana, lee = keys.of("A", "ana", "creator"), keys.of("A", "lee", "approver")
    made = client.post("/v1/templates/rej-t/versions", json=BODY, headers=ana)
    assert made.status_code == 201, made.text
    path = "/v1/templates/rej-t/versions/1"
    with all_reach("from template_versions", 2):
        answers = at_once(
            lambda call: call(),
            [
                lambda: client.post(f"{path}/submit", headers=ana),
                lambda: client.post(f"{path}/submit", headers=ana),
            ],
        )
    assert statuses(answers) == [200, 409], [a.text for a in answers]
    rejected = client.post(
        f"{path}/review", json={"decision": "reject", "note": "off brand"}, headers=lee
    )
    assert rejected.status_code == 200, rejected.text
    again = client.post(f"{path}/submit", headers=ana)
    assert again.status_code == 409, again.text
    shown = client.get("/v1/templates/rej-t", headers=lee).json()
    assert [v["status"] for v in shown["versions"]] == ["rejected"], shown


def test_the_longest_name_and_label_move_and_are_audited(
    client: TestClient, keys: Keys, db: Database
) -> None:
    """A 120-character template name and a 64-character label: the audit subject
    ``name:label`` is 185 characters, past the column's 160, and PostgreSQL answered 500
    (SQLite, which does not enforce a width, took it; migration 1010)."""
    name, label = "t" * 120, "l" * 64
    _approved_versions(client, keys, name, 1)
    lee = keys.of("A", "lee", "approver")
    moved = client.put(
        f"/v1/templates/{name}/labels/{label}", json={"weights": {"1": 1}}, headers=lee
    )
    assert moved.status_code == 200, moved.text
    assert _moves(db, f"{name}:{label}") == [(None, {"1": 1.0})]
