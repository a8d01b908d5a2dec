"""Every credential the settings configure - the same set the input check refuses in a brief
(``brandloop.settings.configured_credentials``), a key in any ``*_URL`` setting's query
included - is taken out of what any provider says back, its errors too, before the run stores
or logs it (docs/providers.md). Before, only the ``SecretStr`` settings were (tester26d,
defect 1)."""

from __future__ import annotations

import logging

import pytest

from brandloop.agent.runner import run_generation
from brandloop.domain import GenerationRequest
from brandloop.providers import ImageRequest, ImageResult
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings
from brandloop.tools.providers.errors import TerminalProviderError
from tests.agent.helpers import add_acme, allow
from tests.backends import steady_procedural
from tests.databases import stored_anywhere

GATEWAY_KEY = "GatewayKey-0f1e2d3c4b"
#: the key whole, its tail and a middle run, each 8 characters or more
NEEDLES = (GATEWAY_KEY, GATEWAY_KEY[-9:], GATEWAY_KEY[3:13])


class EchoingProvider:
    """The procedural renderer behind a server that repeats a gateway key: in a 400 on its first
    call, then in every revised prompt, request id and ``usage``."""

    name = "procedural"

    def __init__(self) -> None:
        self.inner = steady_procedural()
        self.calls = 0

    async def generate(self, request: ImageRequest) -> ImageResult:
        self.calls += 1
        if self.calls == 1:
            raise TerminalProviderError(
                f"HTTP 400: bad url /v1/images?api_key={GATEWAY_KEY}", provider=self.name
            )
        result = await self.inner.generate(request)
        return result.model_copy(
            update={
                "revised_prompt": f"{request.prompt} (tail {GATEWAY_KEY[-9:]})",
                "provider_request_id": f"req_{GATEWAY_KEY[3:13]}",
                "usage": {"note": f"key {GATEWAY_KEY}"},
            }
        )


async def test_a_key_in_a_url_setting_is_redacted_from_answers_and_errors(
    settings: Settings, db: Database, caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    monkeypatch.setattr(logging.getLogger("brandloop"), "propagate", True)
    caplog.set_level(logging.DEBUG, logger="brandloop")
    configured = settings.model_copy(
        update={"moderation_base_url": f"https://moderation.example/v1?api_key={GATEWAY_KEY}"}
    )
    add_acme(configured, db)
    provider = EchoingProvider()
    # seeded: the first call (the one that fails) goes to procedural/draft, leaving the
    # pricier procedural/studio to fall back to; unseeded, the draw follows the random run id
    result = await run_generation(
        GenerationRequest(
            brief="a cup of coffee", brand="Acme Coffee", count=1, size="128x128", seed=3
        ),
        settings=configured,
        db=db,
        providers={"procedural": provider},
        use_memory=False,
        image_moderator=allow,
    )
    assert provider.calls >= 2 and result.images, result.reason
    with db.session() as session:
        attempts = crud.list_attempts(session, run_id=result.run_id)
        events = crud.list_events(session, run_id=result.run_id)
        stored = repr([(a.error, a.revised_prompt, a.provider_request_id) for a in attempts])
        stored += repr([e.payload for e in events])
    assert "bad url /v1/images?api_key=[redacted]" in stored, stored[:3000]
    assert "(tail [redacted])" in stored and "req_[redacted]" in stored, stored[:3000]
    dumped = result.model_dump_json()
    for needle in NEEDLES:
        assert needle not in dumped, needle
        assert stored_anywhere(db, needle, settings.data_dir) == [], needle
        for record in caplog.records:
            assert needle not in record.getMessage(), (needle, record.getMessage())
