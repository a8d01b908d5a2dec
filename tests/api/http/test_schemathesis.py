"""Schemathesis against the app's own OpenAPI schema, with every one of its checks: the schema
is the contract, exactly (issue 18 part 2).

One run of schemathesis' engine, as ``st run --checks all`` runs it, over every operation: the
examples, coverage (boundaries, missing and unexpected methods and headers), fuzzing (in both
generation modes, positive and negative) and stateful phases. Every check is on:
``not_a_server_error``, ``status_code_conformance``, ``content_type_conformance``,
``response_headers_conformance``, ``response_schema_conformance``, ``negative_data_rejection``,
``positive_data_acceptance``, ``missing_required_header``, ``unsupported_method``,
``allow_header_conformance``, ``ignored_auth``, ``use_after_free``,
``ensure_resource_availability``, ``object_level_authorization``, and ours: every 4xx and 5xx is
an RFC 9457 problem+json with a stable type, and schema-valid data answered 422 was refused by
a moderation policy. Runs in CI on both databases (docs/http-api.md).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config._checks import POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES
from schemathesis.engine import Status, StopReason, events, from_schema
from schemathesis.engine.run import PhaseName

from brandloop.agent.revision import asks_nothing
from brandloop.api.app import create_app
from brandloop.api.config import ApiSettings
from brandloop.settings import Settings
from tests.api.http.conftest import Keys, brand_kit
from tests.conftest import BASE_SEED

#: examples per operation and generation mode in the fuzzing phase
EXAMPLES = 15
#: steps of each stateful scenario (links between operations: create, then read, act, delete)
STATEFUL_STEPS = 20

#: The operations that spend money. Valid data may meet the tenant's daily quota there: a 402
#: ``quota-exceeded`` depends on what the tenant spent today, not on the request's shape (like
#: the 409 of a state conflict), so positive_data_acceptance takes a 402 from these and from no
#: other operation. The quota itself stays as configured.
SPENDING = [
    "POST /v1/generations",
    "POST /v1/threads",
    "POST /v1/threads/{thread_id}/messages",
    "POST /v1/campaigns",
    "POST /v1/runs/{run_id}/resume",
]

#: The operations that put text through moderation before answering. Valid data may fail a
#: policy: a style note naming a term its brand forbids (a brand the stateful phase made with
#: random forbidden terms), a template body the text gate refuses. Like the quota's 402, a 422
#: ``refused`` depends on what is stored (the brand's kit and policy), not on the request's
#: shape, so positive_data_acceptance takes a 422 here - and ``refused_is_the_only_valid_422``
#: holds that 422 to the ``refused`` problem: a 422 ``bad-input`` for schema-valid data is
#: still a failure. The policies themselves: tests/api/http/test_endpoints.py and
#: tests/api/test_style_notes.py.
MODERATED = [
    "POST /v1/memory/notes",
    "POST /v1/templates/{name}/versions",
    "POST /v1/generations",
    "POST /v1/threads",
    "POST /v1/threads/{thread_id}/messages",
    "POST /v1/campaigns",
]
REFUSED = "urn:brandloop:problem:refused"


#: A template body is Jinja: one that opens a tag it does not close (``{{``, ``{%`` or ``{#``
#: in random text) is a 422, a rule JSON Schema has no words for. Generated bodies there are
#: plain text (rare otherwise: about one string in 3000); the bodies' own rules (syntax, known
#: variables, the sandbox) are tested in tests/api/http/test_endpoints.py.
TEMPLATE_VERSIONS = "/v1/templates/{name}/versions"
JINJA_OPENINGS = ("{{", "{%", "{#")


def _plain_text(ctx: Any, body: Any) -> bool:
    if not isinstance(body, dict):
        return True
    texts = [body.get("body"), body.get("negative_body")]
    return not any(
        isinstance(text, str) and any(mark in text for mark in JINJA_OPENINGS) for text in texts
    )


#: A thread's follow-up that asks for no change to the brief - a question back ("what formats
#: do you have?") or no letter or digit ("?!?...", common in random text) - is a 422 with
#: nothing stored, a rule JSON Schema has no words for. Generated follow-ups ask for one; the
#: rule itself: tests/api/http/test_thread_question_wording.py.
MESSAGES = "/v1/threads/{thread_id}/messages"
GENERATIONS = "/v1/generations"


def _asks_something(ctx: Any, body: Any) -> bool:
    if not isinstance(body, dict):
        return True
    text = body.get("content", body.get("brief") if body.get("thread_id") else None)
    return not isinstance(text, str) or not asks_nothing(text)


class _OneRequestPerIdempotencyKey:
    """The client side of "one Idempotency-Key, one request": the same key with another request
    is a 422 ``idempotency-key-reused``, a rule JSON Schema has no words for, and schemathesis
    reuses generated values across cases. Like a client that appends a nonce, this gives each
    valid key (1-255 bytes) a unique suffix on its way in; keys outside that length go through
    untouched (negative data, a 400). Replays themselves: tests/api/http/test_idempotency.py."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.suffixes = itertools.count()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            # the test's TestClient runs the app's lifespan; schemathesis would run a second
            # one on its own loop for the rest of the process (its pool's tasks on that loop)
            await _lifespan_without_app(receive, send)
            return
        if scope["type"] == "http":
            headers = []
            for name, value in scope["headers"]:
                if name == b"idempotency-key" and 1 <= len(value) <= 255:
                    suffix = f"-{next(self.suffixes)}".encode()
                    value = value[: 255 - len(suffix)] + suffix
                headers.append((name, value))
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


async def _lifespan_without_app(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


@schemathesis.check
def problem_details(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx and 5xx is an RFC 9457 problem+json with a stable type and its own status."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/problem+json"), content_type
    body = response.json()
    assert body["type"].startswith("urn:brandloop:problem:"), body
    assert body["status"] == response.status_code, body
    # a Python traceback's header, not the bare word: a 404 may echo a fuzzed id "Traceback"
    assert "Traceback (most recent call last)" not in response.text
    return None


@schemathesis.check
def refused_is_the_only_valid_422(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schema-valid data answered 422 was refused by a policy (``MODERATED``), never found bad."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    if case.operation.path in (MESSAGES, GENERATIONS) and not _asks_something(None, case.body):
        # a follow-up asking for no change ("0", "and", "ok"): the coverage and examples
        # phases do not go through the body filter, and such text is common in them
        return None
    body = response.json()
    assert body.get("type") == REFUSED, f"schema-valid data answered 422 {body.get('type')}"
    assert case.operation.label in MODERATED, f"{case.operation.label} refused valid data"
    return None


def _expected(*extra: str) -> dict[str, Any]:
    statuses = [*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, *extra]
    return {"positive_data_acceptance": {"expected-statuses": statuses}}


def _extra_statuses() -> dict[str, list[str]]:
    """Each operation's statuses for valid data beyond schemathesis' own list."""
    extra: dict[str, list[str]] = {}
    for op in SPENDING:
        extra.setdefault(op, []).append("402")
    for op in MODERATED:
        extra.setdefault(op, []).append("422")
    return extra


def _config(headers: dict[str, str]) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": BASE_SEED,  # replay a run with BRANDLOOP_TEST_SEED
            "headers": headers,
            "workers": 1,
            "suppress-health-check": ["all"],
            "checks": {"enabled": True},  # every check (listed in the module docstring)
            "generation": {
                "mode": "all",  # positive and negative
                "max-examples": EXAMPLES,
                "database": "none",
                # The API refuses text holding NUL, as its description says (PostgreSQL text
                # cannot store it; tests/api/http/test_input_guard.py); JSON Schema has no
                # word for "any string but NUL" short of a pattern on every string.
                "allow-x00": False,
            },
            "phases": {"stateful": {"max-steps": STATEFUL_STEPS}},
            "operations": [
                {"include-name": [op], "checks": _expected(*statuses)}
                for op, statuses in _extra_statuses().items()
            ],
        }
    )


@pytest.mark.slow
def test_every_operation_keeps_the_contract_under_every_check(
    settings: Settings, keys: Keys
) -> None:
    load_all_checks()
    assert {
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "positive_data_acceptance",
        "missing_required_header",
        "unsupported_method",
        "allow_header_conformance",
        "ignored_auth",
        "use_after_free",
        "ensure_resource_availability",
        "problem_details",
        "refused_is_the_only_valid_422",
    } <= set(CHECKS.get_all_names())
    app = create_app(
        settings,
        ApiSettings(
            workers=0,  # jobs stay queued: the contract, not the agent, is under test
            max_wait_seconds=0,
            rate_limit_per_minute=1_000_000,
            rate_limit_burst=1_000_000,
            auth_failures_per_minute=1_000_000,
            auth_failures_burst=1_000_000,
        ),
        use_memory=False,
    )
    headers = keys["A", "admin"]
    failures: dict[str, str] = {}
    errors: list[str] = []
    tested: set[str] = set()
    stopped: StopReason | None = None
    with TestClient(app) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=headers).status_code == 201
        schema = schemathesis.openapi.from_asgi(
            "/openapi.json", _OneRequestPerIdempotencyKey(app), config=_config(headers)
        )
        schema.hook("filter_body").apply_to(method="POST", path=TEMPLATE_VERSIONS)(_plain_text)
        for path in (MESSAGES, GENERATIONS):
            schema.hook("filter_body").apply_to(method="POST", path=path)(_asks_something)
        operations = {result.ok().label for result in schema.get_all_operations()}
        assert len(operations) >= 45
        for event in from_schema(schema).execute():
            if isinstance(event, events.ScenarioFinished):
                if event.phase == PhaseName.FUZZING and event.status != Status.SKIP:
                    tested.add(event.recorder.label)
                for case_id, checks in event.recorder.checks.items():
                    for check in checks:
                        if check.status != Status.FAILURE or check.failure_info is None:
                            continue
                        failure = check.failure_info.failure
                        key = f"[{event.phase.value}] {check.name}: {failure.operation}"
                        failures.setdefault(
                            key, _report(event, case_id, failure, check.failure_info.code_sample)
                        )
            elif isinstance(event, events.NonFatalError):
                errors.append(f"{event.label}: {event.value!r}")
            elif isinstance(event, events.FatalError):
                errors.append(f"fatal: {event.exception!r}")
            elif isinstance(event, events.EngineFinished):
                stopped = event.stop_reason
                for failure in event.failures:  # checks over the whole run
                    failures.setdefault(f"[run] {failure.title}", failure.message[:600])
    assert not failures, f"{len(failures)} failing checks:\n\n" + "\n\n".join(
        f"{key}\n{text}" for key, text in sorted(failures.items())
    )
    assert not errors, errors
    assert stopped == StopReason.COMPLETED
    assert tested == operations, sorted(operations - tested)


def _report(event: events.ScenarioFinished, case_id: str, failure: Any, curl: str) -> str:
    """The failure, how to send the request again and what the app answered."""
    answer = ""
    interaction = event.recorder.interactions.get(case_id)
    if interaction is not None and interaction.response is not None:
        response = interaction.response
        answer = f"-> {response.status_code} {(response.content or b'')[:400]!r}"
    return f"{failure.title}: {failure.message[:600]}\n{curl[:1500]}\n{answer}"
