"""The text gate inside real runs: the brand's moderation policy applies, refusals say which
layer fired on which span, and the minors line is refused and audited at intake, on the
rendered prompt and on an LLM-written variant."""

from __future__ import annotations

import json
from pathlib import Path

from brandloop.agent.runner import build_context, run_generation
from brandloop.agent.writer import PromptWriter
from brandloop.domain import GenerationRequest
from brandloop.policies.brandkit import load_brand_kit
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings
from brandloop.tools.moderation.minors import AUDIT_ACTION
from tests.agent.helpers import ROOT, CountingProvider, add_acme, allow
from tests.agent.test_writer import fake, variants_json


def request(brief: str, brand: str = "Acme Coffee", **extra: object) -> GenerationRequest:
    fields: dict[str, object] = {"count": 1, "size": "128x128", "seed": 3, "budget_usd": 1.0}
    return GenerationRequest(brief=brief, brand=brand, **(fields | extra))  # type: ignore[arg-type]


async def run(settings: Settings, db: Database, brief: str, **kwargs: object):
    provider = CountingProvider()
    result = await run_generation(
        request(brief, **kwargs.pop("request_extra", {})),  # type: ignore[arg-type]
        settings=settings,
        db=db,
        providers={"procedural": provider},
        use_memory=False,
        image_moderator=allow,
        **kwargs,  # type: ignore[arg-type]
    )
    return result, provider


def audits(db: Database, run_id: str) -> list[dict]:
    with db.session() as session:
        return [
            {"action": row.action, "actor": row.actor, "detail": row.detail}
            for row in crud.list_audit(session, tenant="default", subject_id=run_id)
        ]


def events(db: Database, run_id: str, kind: str) -> list[dict]:
    with db.session() as session:
        return [e.payload for e in crud.list_events(session, run_id=run_id) if e.kind == kind]


async def test_a_refused_brief_says_which_layer_fired_on_which_span(settings, db):
    add_acme(settings, db)
    brief = "Autumn poster, call +44 20 7946 0958: a n.u.d.e model with the cup"
    result, provider = await run(settings, db, brief)
    assert result.status == "refused" and provider.calls == []
    assert "sexual by the lexical layer on [" in result.reason and '"n.u.d.e"' in result.reason
    (verdict,) = events(db, result.run_id, "moderation")
    (finding,) = verdict["findings"]
    assert (finding["layer"], finding["category"], finding["excerpt"]) == (
        "lexical",
        "sexual",
        "n.u.d.e",
    )
    stored = json.dumps(events(db, result.run_id, "moderation")) + result.reason
    assert "7946" not in stored
    assert audits(db, result.run_id) == [], "only the minors line is audited"


async def test_the_minors_line_at_intake_is_refused_and_audited(settings, db):
    add_acme(settings, db)
    result, provider = await run(settings, db, "a child in a sexualized pose advertising candy")
    assert result.status == "refused" and provider.calls == []
    assert "sexual/minors by the minors layer" in result.reason
    (entry,) = audits(db, result.run_id)
    assert entry["action"] == AUDIT_ACTION and entry["detail"]["source"] == "brief"
    assert "candy" not in json.dumps(entry), "the audit log never holds the text"
    assert {f["layer"] for f in entry["detail"]["findings"]} >= {"minors"}
    assert len(entry["detail"]["normalised_sha256"]) == 64


async def test_the_minors_line_on_the_rendered_prompt(settings, db):
    kit = load_brand_kit(ROOT / "examples/brands/acme-coffee.yaml").model_copy(
        update={"name": "Sultry Swim", "tone": ["sultry"]}
    )
    with db.session() as session:
        crud.upsert_brand(session, tenant="default", kit=kit)
    # the brief is fine on its own; the brand's tone, rendered into the prompt, is not
    brief = "a toddler on the beach in a swimsuit"
    result, provider = await run(settings, db, brief, request_extra={"brand": "Sultry Swim"})
    assert result.status == "refused" and provider.calls == []
    refusal = next(d for d in result.decisions if d.action == "refuse_prompt")
    assert "sexual/minors" in refusal.reason
    (entry,) = audits(db, result.run_id)
    assert entry["action"] == AUDIT_ACTION and entry["detail"]["source"] == "prompt"


async def test_the_minors_line_on_an_llm_written_variant(settings, db):
    add_acme(settings, db)
    writer = PromptWriter(
        fake(variants_json("a sexy schoolgirl holding the coffee cup", "teal coffee cup at dawn"))
    )
    result, provider = await run(
        settings, db, "a coffee cup", writer=writer, request_extra={"count": 2}
    )
    prompts = [c.prompt for c in provider.calls]
    assert prompts and all("schoolgirl" not in p for p in prompts)
    (entry,) = audits(db, result.run_id)
    assert entry["action"] == AUDIT_ACTION and entry["detail"]["source"] == "variant"


def _brand_policy(settings: Settings, body: str) -> None:
    folder = settings.data_dir / "policies"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "acme-coffee.yaml").write_text(body, encoding="utf-8")


async def test_a_run_uses_its_brands_moderation_policy(settings, db):
    add_acme(settings, db)
    result, _ = await run(settings, db, "nude lipstick shades next to the cup")
    assert result.status != "refused", result.reason
    _brand_policy(settings, 'moderation:\n  text:\n    senses: {"nude:colour": false}\n')
    result, provider = await run(settings, db, "nude lipstick shades next to the cup")
    assert result.status == "refused" and provider.calls == []
    assert "sexual by the lexical layer" in result.reason


async def test_brand_semantic_and_image_thresholds_reach_the_agent(settings, db, tmp_path: Path):
    add_acme(settings, db)
    _brand_policy(
        settings,
        "moderation:\n  text:\n    semantic_thresholds: {violence: 1.0e-12}\n"
        "  image:\n    block: {BUTTOCKS_EXPOSED: 0.9}\n",
    )
    result, _ = await run(settings, db, "a steaming cup of coffee on a table")
    assert result.status == "refused"
    assert "violence by the semantic layer" in result.reason
    ctx = build_context(settings, db, request("a cup"), use_memory=False, use_cache=False)
    assert ctx.moderation.text.semantic_thresholds == {"violence": 1.0e-12}
    assert ctx.image_moderator.policy.block["BUTTOCKS_EXPOSED"] == 0.9  # type: ignore[attr-defined]
    assert ctx.image_moderator.policy.block["ANUS_EXPOSED"] == 0.4  # type: ignore[attr-defined]
