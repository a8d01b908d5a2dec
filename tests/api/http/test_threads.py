"""Follow-ups to one thread posted at the same moment, on two API replicas sharing a database
(SQLite and PostgreSQL): each edits the brief the one before it made (docs/http-api.md,
Threads), so no edit is lost - "drop the croissant" and "add steam" at once end in a brief
with steam and without the croissant. A follow-up that cannot be applied (the thread kept
moving on) is a 409 ``conflict`` with nothing stored: no message, no job, no quota held.
An ``Idempotency-Key`` replay still answers with the message it stored."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any

from fastapi.testclient import TestClient
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from sqlalchemy import func, select

from brandloop.agent.writer import PromptWriter
from brandloop.api.app import create_app
from brandloop.api.config import ApiSettings
from brandloop.providers import ImageProvider
from brandloop.registry.db import Database
from brandloop.registry.models_money import SpendReservationRow
from brandloop.registry.models_service import JobRow, ThreadMessageRow
from brandloop.settings import Settings
from tests.api.http.conftest import Keys, assert_problem, brand_kit
from tests.backends import steady_procedural
from tests.databases import db_on_both, settings_on_both

__all__ = ["db_on_both", "settings_on_both"]

FIRST = "a croissant beside a cup of coffee on a marble counter"


class MeetingChatModel(BaseChatModel):
    """The LLM writer's chat model, faked at its boundary: the first ``meet`` calls answer only
    once all of them have arrived - so every follow-up sent at once has read the thread's
    brief before any is stored - and later calls at once. Its answers are nothing a writer can
    use, so the rules make each edit (the same edit without a writer)."""

    meeting: Any  # threading.Barrier
    calls: list[str]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls.append(str(messages[-1].content))
        if len(self.calls) <= self.meeting.parties:
            self.meeting.wait(timeout=30)
        return ChatResult(generations=[ChatGeneration(message=AIMessage("no edit to offer"))])

    @property
    def _llm_type(self) -> str:
        return "meeting-fake"


@contextmanager
def replicas(
    settings: Settings, db: Database, n: int, writer: PromptWriter | None = None
) -> Iterator[list[TestClient]]:
    """``n`` API replicas on one database; jobs stay queued (no workers): only what the
    follow-ups store is under test."""

    def providers(_: Settings) -> dict[str, ImageProvider]:
        return {"procedural": steady_procedural()}

    api = ApiSettings(
        workers=0, rate_limit_per_minute=100_000, rate_limit_burst=10_000, daily_quota_usd=1000
    )
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                TestClient(
                    create_app(
                        settings,
                        api,
                        providers_factory=providers,
                        use_memory=False,
                        database=db,
                        writer=writer,
                    ),
                    raise_server_exceptions=False,
                )
            )
            for _ in range(n)
        ]


def _thread(client: TestClient, keys: Keys) -> str:
    assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
    created = client.post(
        "/v1/threads",
        json={"brand": "Acme Coffee", "title": "counter", "message": FIRST, "size": "64x64"},
        headers=keys["A", "creator"],
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _at_once(
    clients: Sequence[TestClient], url: str, posts: Sequence[tuple[dict[str, Any], dict[str, str]]]
) -> list[Any]:
    """Each (body, headers) POSTed to ``url`` at the same moment, spread over ``clients``."""
    start = threading.Barrier(len(posts))

    def post(index: int) -> Any:
        body, headers = posts[index]
        start.wait()
        return clients[index % len(clients)].post(url, json=body, headers=headers)

    with ThreadPoolExecutor(max_workers=len(posts)) as pool:
        return list(pool.map(post, range(len(posts))))


def _stored(db: Database, thread_id: str) -> tuple[list[ThreadMessageRow], int, int]:
    """The thread's messages, and how many jobs and quota holds the tenant has."""
    with db.session() as session:
        messages = list(
            session.scalars(
                select(ThreadMessageRow)
                .where(ThreadMessageRow.thread_id == thread_id)
                .order_by(ThreadMessageRow.seq)
            )
        )
        jobs = session.scalar(select(func.count()).select_from(JobRow)) or 0
        holds = (
            session.scalar(
                select(func.count()).where(
                    SpendReservationRow.kind == "admission", SpendReservationRow.tenant == "A"
                )
            )
            or 0
        )
    return messages, int(jobs), int(holds)


def _assert_a_chain(convo: dict[str, Any]) -> None:
    """Each follow-up edited the brief the message before it stored: no edit was lost."""
    messages = convo["messages"]
    assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))
    for before, after in itertools.pairwise(messages):
        assert after["edit"]["before"] == before["brief"], (before, after)
    assert len({m["job"]["id"] for m in messages}) == len(messages)


def test_two_follow_ups_at_once_on_two_replicas_both_edit_the_brief(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    creator = keys["A", "creator"]
    model = MeetingChatModel(meeting=threading.Barrier(2), calls=[])
    with replicas(settings, db, 2, PromptWriter(model)) as (first, second):
        thread_id = _thread(first, keys)
        url = f"/v1/threads/{thread_id}/messages"
        keyed = {**creator, "Idempotency-Key": "drop-it-1"}
        drop, steam = _at_once(
            [first, second],
            url,
            [({"content": "drop the croissant"}, keyed), ({"content": "add steam"}, creator)],
        )
        assert not model.meeting.broken, "the two follow-ups did not revise at the same time"
        assert model.calls[0] != model.calls[1]
        assert {m.split("Current brief: ")[1].split("\n")[0] for m in model.calls[:2]} == {FIRST}

        # both are taken, one after the other
        assert (drop.status_code, steam.status_code) == (202, 202), (drop.text, steam.text)
        convo = first.get(f"/v1/threads/{thread_id}", headers=creator).json()
        _assert_a_chain(convo)
        assert convo["messages"][0]["content"] == FIRST
        assert sorted(m["content"] for m in convo["messages"][1:]) == [
            "add steam",
            "drop the croissant",
        ]
        final = convo["messages"][-1]["brief"]
        assert final == "a cup of coffee on a marble counter, steam", final
        assert len(model.calls) == 3, "the later follow-up is revised again, on the new brief"
        for answer in (drop, steam):
            stored = next(m for m in convo["messages"] if m["id"] == answer.json()["message"]["id"])
            assert answer.json()["message"]["brief"] == stored["brief"]
            assert answer.json()["job"]["id"] == stored["job"]["id"]
        messages, jobs, holds = _stored(db, thread_id)
        assert (len(messages), jobs, holds) == (3, 3, 3)
        with db.session() as session:
            requests = {j.id: j.request for j in session.scalars(select(JobRow))}
        assert requests[convo["messages"][-1]["job"]["id"]]["brief"] == final
        assert requests[convo["messages"][-1]["job"]["id"]]["avoid"] == ["croissant"]

        # the keyed follow-up's answer is replayed, from either replica, and stores nothing
        for client in (second, first):
            again = client.post(url, json={"content": "drop the croissant"}, headers=keyed)
            assert again.status_code == 202, again.text
            assert again.headers["idempotent-replayed"] == "true"
            assert again.json() == drop.json()
        assert _stored(db, thread_id)[1:] == (3, 3)
        assert len(_stored(db, thread_id)[0]) == 3


def test_a_burst_of_follow_ups_loses_no_edit(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    """Eight follow-ups at once over two replicas, each adding its own clause: every one that
    is answered 202 is in the final brief, in a chain of edits; any other is a 409 conflict
    that stored nothing."""
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    creator = keys["A", "creator"]
    clauses = [
        "steam",
        "a saucer",
        "a spoon",
        "morning light",
        "a napkin",
        "sugar cubes",
        "a newspaper",
        "a teal vase",
    ]
    with replicas(settings, db, 2) as clients:
        thread_id = _thread(clients[0], keys)
        url = f"/v1/threads/{thread_id}/messages"
        answers = _at_once(clients, url, [({"content": f"add {c}"}, creator) for c in clauses])
        taken = [c for c, a in zip(clauses, answers, strict=True) if a.status_code == 202]
        for answer in answers:
            if answer.status_code != 202:
                problem = assert_problem(answer, 409, "conflict")
                assert "moved on" in problem["detail"] and "post" in problem["detail"]
        assert taken, [a.text for a in answers]
        convo = clients[1].get(f"/v1/threads/{thread_id}", headers=creator).json()
        _assert_a_chain(convo)
        assert sorted(m["content"] for m in convo["messages"][1:]) == sorted(
            f"add {c}" for c in taken
        )
        final = convo["messages"][-1]["brief"]
        assert final.startswith(FIRST)
        assert sorted(final.removeprefix(FIRST + ", ").split(", ")) == sorted(taken), final
        messages, jobs, holds = _stored(db, thread_id)
        assert (len(messages), jobs, holds) == (1 + len(taken),) * 3


def test_a_thread_whose_first_message_is_refused_is_not_stored(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    """A ``POST /v1/threads`` whose first message is refused (402, over the daily quota) keeps
    nothing: an outside tester found an empty thread stored by each retry."""
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    with replicas(settings, db, 1) as (client,):
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        body = {"brand": "Acme Coffee", "title": "autumn", "message": "a coffee cup"}
        over = {**body, "budget_usd": 1500}  # the replicas' daily quota is $1000
        headers = {**keys["A", "creator"], "Idempotency-Key": "k1"}
        for _ in range(2):
            answer = client.post("/v1/threads", json=over, headers=headers)
            assert_problem(answer, 402, "quota-exceeded")
        assert client.get("/v1/threads", headers=keys["A", "creator"]).json() == []
        made = client.post("/v1/threads", json=body, headers=keys["A", "creator"])
        assert made.status_code == 201, made.text
        listed = client.get("/v1/threads", headers=keys["A", "creator"]).json()
        assert [t["id"] for t in listed] == [made.json()["id"]]
