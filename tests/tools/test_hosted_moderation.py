"""The hosted moderation layer against a local fake OpenAI moderation server that answers the
documented response shape: wire format, the category mapping, thresholds, the providers'
error model, and runs where it works in addition to the offline layers."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from brandloop.agent.runner import run_generation
from brandloop.domain import GenerationRequest
from brandloop.errors import BadInputError
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from brandloop.tools.moderation.hosted import (
    CATEGORY_MAP,
    DEFAULT_MODEL,
    OpenAIModeration,
    build_hosted_moderator,
)
from brandloop.tools.moderation.minors import AUDIT_ACTION
from brandloop.tools.moderation.policy import HostedPolicy
from brandloop.tools.providers.errors import (
    MalformedResponseError,
    RetryableProviderError,
    TerminalProviderError,
)
from tests.agent.helpers import CountingProvider, add_acme, allow
from tests.fakes.moderation_server import FakeModerationApp, flag, score, serve

KEY = "sk-test-mod-0001"


@pytest.fixture
def fake() -> Iterator[tuple[FakeModerationApp, str]]:
    app = FakeModerationApp(api_key=KEY)
    with serve(app) as base_url:  # type: ignore[arg-type]
        yield app, base_url


class Waits:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def png(red: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (red, 80, 80)).save(buffer, format="PNG")
    return buffer.getvalue()


def moderator(base_url: str, **kwargs: object) -> OpenAIModeration:
    return OpenAIModeration(api_key=KEY, base_url=base_url, **kwargs)  # type: ignore[arg-type]


async def test_the_wire_format(fake):
    app, base_url = fake
    verdict = await moderator(base_url).moderate(text="a calm cup", images=[png(10)], source="t")
    assert verdict.allowed and verdict.findings == []
    (request,) = app.requests
    assert request["headers"]["authorization"] == f"Bearer {KEY}"
    body = request["body"]
    assert body["model"] == DEFAULT_MODEL == "omni-moderation-latest"
    text, image = body["input"]
    assert text == {"type": "text", "text": "a calm cup"}
    assert image["type"] == "image_url"
    assert image["image_url"]["url"].startswith("data:image/png;base64,")


@pytest.mark.parametrize(("theirs", "ours"), CATEGORY_MAP.items())
async def test_each_documented_category_maps_onto_ours(fake, theirs, ours):
    _, base_url = fake
    verdict = await moderator(base_url).moderate(text=f"a cup {flag(theirs)}", source="brief")
    assert verdict.categories == [ours]
    (finding,) = verdict.findings
    assert (finding.layer, finding.category, finding.score) == ("hosted", ours, 0.9)
    assert verdict.scores[f"hosted:{ours}"] == 0.9


async def test_images_are_moderated_too(fake):
    _, base_url = fake
    verdict = await moderator(base_url).moderate(images=[png(250)], source="image")
    assert verdict.categories == ["sexual"]


async def test_thresholds_from_the_brand_and_the_fixed_minors_one(fake):
    _, base_url = fake
    text = f"a cup {score('violence', 0.4)} {score('harassment', 0.2)}"
    assert (await moderator(base_url).moderate(text=text, source="b")).allowed
    strict = moderator(base_url, policy=HostedPolicy(thresholds={"violence": 0.3}))
    assert (await strict.moderate(text=text, source="b")).categories == ["violence"]
    minors = await moderator(base_url).moderate(
        text=f"a cup {score('sexual/minors', 0.6)}", source="b"
    )
    assert minors.categories == ["sexual/minors"], "not flagged, but over the fixed 0.5"


async def test_retries_honour_retry_after_then_succeed(fake):
    app, base_url = fake
    app.faults.extend(["429", "500"])
    waits = Waits()
    verdict = await moderator(base_url, sleep=waits).moderate(text="a cup", source="b")
    assert verdict.allowed and len(app.requests) == 3
    assert waits.seconds[0] == pytest.approx(0.02), "retry-after-ms: 20"


async def test_errors_follow_the_providers_error_model(fake):
    app, base_url = fake
    app.faults.extend(["500", "500", "500"])
    with pytest.raises(RetryableProviderError) as retried:
        await moderator(base_url, sleep=Waits()).moderate(text="a cup", source="b")
    assert retried.value.tries == 3 and retried.value.status_code == 500
    with pytest.raises(TerminalProviderError, match="401") as denied:
        await OpenAIModeration(api_key="sk-wrong-key-123456", base_url=base_url).moderate(
            text="a cup", source="b"
        )
    assert "sk-wrong-key-123456" not in str(denied.value), "the echoed key is redacted"
    app.faults.append("400")
    with pytest.raises(TerminalProviderError, match="400"):
        await moderator(base_url).moderate(text="a cup", source="b")
    for fault in ("malformed", "no_results"):
        app.faults.append(fault)
        with pytest.raises(MalformedResponseError):
            await moderator(base_url).moderate(text="a cup", source="b")


async def test_an_unreachable_service_is_retryable():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        hosted = OpenAIModeration(api_key=KEY, client=client, sleep=Waits())
        with pytest.raises(RetryableProviderError, match="could not be reached"):
            await hosted.moderate(text="a cup", source="b")


def test_configuration(monkeypatch: pytest.MonkeyPatch, settings: Settings):
    assert build_hosted_moderator(settings) is None, "off by default"
    with pytest.raises(BadInputError, match="MODERATION_API_KEY"):
        build_hosted_moderator(settings.model_copy(update={"moderation_provider": "openai"}))
    with pytest.raises(BadInputError):
        OpenAIModeration(api_key=KEY).body(text=None, images=[b"not an image"])


# --------------------------------------------------------------------------- in a run


@pytest.fixture
def hosted_settings(
    settings: Settings, fake, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Settings, FakeModerationApp]]:
    app, base_url = fake
    monkeypatch.setenv("BRANDLOOP_MODERATION_PROVIDER", "openai")
    monkeypatch.setenv("BRANDLOOP_MODERATION_API_KEY", KEY)
    monkeypatch.setenv("BRANDLOOP_MODERATION_BASE_URL", base_url)
    get_settings.cache_clear()
    yield get_settings(), app
    get_settings.cache_clear()


async def _run(settings: Settings, db: Database, brief: str):
    provider = CountingProvider()
    result = await run_generation(
        GenerationRequest(brief=brief, brand="Acme Coffee", count=1, size="128x128", seed=2),
        settings=settings,
        db=db,
        providers={"procedural": provider},
        use_memory=False,
        image_moderator=allow,
    )
    return result, provider


async def test_a_run_uses_it_in_addition_to_the_offline_layers(hosted_settings, db):
    settings, app = hosted_settings
    add_acme(settings, db)
    # the offline layers refuse first: the service is never asked
    result, provider = await _run(settings, db, "a nude model with the cup")
    assert result.status == "refused" and app.requests == [] and provider.calls == []
    # the offline layers pass it; the service flags it
    result, provider = await _run(settings, db, f"a coffee cup {flag('hate/threatening')}")
    assert result.status == "refused" and provider.calls == []
    assert "hate by the hosted layer" in result.reason
    # passed by both: the image goes to the service as well
    result, provider = await _run(settings, db, "a teal coffee cup at dawn")
    assert result.images, result.reason
    kinds = [part["type"] for r in app.requests for part in r["body"]["input"]]
    assert kinds.count("text") == 2 and kinds.count("image_url") >= 1


async def test_minors_from_the_service_are_audited(hosted_settings, db):
    settings, _ = hosted_settings
    add_acme(settings, db)
    result, _ = await _run(settings, db, f"a coffee cup {flag('sexual/minors')}")
    assert result.status == "refused"
    with db.session() as session:
        (entry,) = list(crud.list_audit(session, tenant="default", subject_id=result.run_id))
    assert entry.action == AUDIT_ACTION
    assert entry.detail["findings"][0]["layer"] == "hosted"


async def test_when_the_service_cannot_answer(hosted_settings, db):
    settings, app = hosted_settings
    add_acme(settings, db)
    app.faults.extend(["401"] * 4)
    result, _ = await _run(settings, db, "a coffee cup")
    assert result.status != "refused"
    note = next(d for d in result.decisions if d.action == "hosted_moderation_unavailable")
    assert "401" in note.reason and KEY not in note.reason
    folder = settings.data_dir / "policies"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "acme-coffee.yaml").write_text(
        "moderation:\n  hosted:\n    on_error: refuse\n", encoding="utf-8"
    )
    app.faults.extend(["401"] * 4)
    result, provider = await _run(settings, db, "a coffee cup")
    assert result.status == "refused" and provider.calls == []
    assert "hosted_unavailable" in result.reason


def test_brandloop_moderate_adds_the_hosted_layer(hosted_settings, capsys):
    from tests.api.test_cli import run_cli

    _, app = hosted_settings
    code, out, _ = run_cli(capsys, "moderate", f"a cup {flag('illicit/violent')}", "--explain")
    assert code == 3 and "why: weapons by the hosted layer" in out
    code, out, _ = run_cli(capsys, "moderate", "a calm cup of tea")
    assert code == 0 and "found nothing" in out
    app.faults.extend(["500"] * 3)
    code, out, _ = run_cli(capsys, "moderate", "a calm cup of tea")
    assert code == 0 and "could not answer" in out
    requests = len(app.requests)
    code, _, _ = run_cli(capsys, "moderate", "a nude model")
    assert code == 3 and len(app.requests) == requests, "offline refusals never reach it"
