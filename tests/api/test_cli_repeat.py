"""What a repeat is, through ``brandloop generate``, on SQLite and PostgreSQL.

An identical seeded request is served what the earlier run accepted, from the generation cache
at $0 (docs/agent.md, "Repeat work is free"). Two ways that went wrong (outside tester, session
19):

* its cache entries were gone (``brandloop cache purge``, or the model's catalog version
  changed and they were deleted at run start), and the replayed candidates were rendered at full
  price with nothing reserved: ``--budget 0.01`` spent $0.08 and the tenant went past its limit;
* the brand kit had been edited since, and the old kit's image was served at $0, the old
  rendered prompt in its receipt.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import event
from sqlalchemy.engine import Engine

from brandloop.artifacts import RECEIPT_KEY, read_png_text
from brandloop.settings import Settings, get_settings
from tests.api.test_cli import BRANDS, run_cli

KIT = BRANDS / "acme-coffee.yaml"
BRIEF = "a morning table"
#: two images of this request are accepted on the procedural renderer at 160x160, one of them
#: by procedural/studio ($0.04): a replay that misses the cache costs more than one cent
SEED = "77"


def _generate(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run_cli(
        capsys, "generate", BRIEF, "--brand", "Acme Coffee", "--seed", SEED, "--n", "2",
        "--size", "160x160", "--json", *extra,
    )  # fmt: skip
    assert out, err
    doc: dict[str, Any] = json.loads(out)
    return code, doc


def _tenant_budget(capsys: pytest.CaptureFixture[str], limit: float) -> dict[str, Any]:
    code, out, err = run_cli(capsys, "campaign", "budget", str(limit), "--tenant", "--json")
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def _actions(doc: dict[str, Any]) -> list[str]:
    return [d["action"] for d in doc["decisions"]]


def _first_run_with_a_cent_left(capsys: pytest.CaptureFixture[str]) -> tuple[dict, float]:
    """The first run (paid), and the tenant budget set so that one cent of it is left."""
    code, _, err = run_cli(capsys, "brands", "add", str(KIT))
    assert code == 0, err
    code, first = _generate(capsys)
    assert code == 0 and first["status"] == "succeeded", first["reason"]
    assert len(first["images"]) == 2 and first["cost_usd"] > 0.02
    limit = round(first["cost_usd"] + 0.01, 6)
    assert _tenant_budget(capsys, limit)["spent_usd"] == pytest.approx(first["cost_usd"])
    return first, limit


def _within_budgets(
    capsys: pytest.CaptureFixture[str], first: dict[str, Any], limit: float, again: dict
) -> None:
    assert again["cost_usd"] <= 0.01 + 1e-9, f"--budget 0.01 spent ${again['cost_usd']}"
    tenant = _tenant_budget(capsys, limit)
    assert tenant["spent_usd"] <= limit + 1e-9, tenant
    assert tenant["spent_usd"] == pytest.approx(first["cost_usd"] + again["cost_usd"])


def test_a_repeat_whose_cache_entries_were_purged_is_planned_within_its_budgets(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    first, limit = _first_run_with_a_cent_left(capsys)
    code, out, err = run_cli(capsys, "cache", "purge")
    assert code == 0 and "deleted" in out, err

    code, again = _generate(capsys, "--budget", "0.01")
    _within_budgets(capsys, first, limit, again)
    assert "replay_cache" not in _actions(again)
    plan = next(d for d in again["decisions"] if d["node"] == "plan")
    assert "no longer in the generation cache" in plan["reason"], plan
    assert first["run_id"] in plan["reason"]
    assert code == 4, again["reason"]  # the budget ran out before two images were accepted


def test_a_repeat_after_the_models_catalog_version_changed_is_planned_within_its_budgets(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A new catalog version of the procedural models: their entries are deleted when the
    run starts (docs/agent.md, "Generation cache"), so a replay would pay for every image."""
    first, limit = _first_run_with_a_cent_left(capsys)
    shipped = yaml.safe_load((Path(__file__).parents[2] / "policies/catalog.yaml").read_text())
    for model in shipped["models"]:
        if model["provider"] == "procedural":
            model["version"] = "2"
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(shipped))
    monkeypatch.setenv("BRANDLOOP_CATALOG_PATH", str(catalog))
    get_settings.cache_clear()

    code, again = _generate(capsys, "--budget", "0.01")
    _within_budgets(capsys, first, limit, again)
    assert "replay_cache" not in _actions(again)
    assert not any(image["cache_hit"] for image in again["images"])
    assert code == 4, again["reason"]


class PurgeOnReplay:
    """Deletes every cache entry in the transaction that records the planner's replay_cache
    decision: the entries were there when the plan looked, and are gone when generate does
    (another process's ``brandloop cache purge`` landing in between)."""

    def __init__(self) -> None:
        self.purged = 0

    def executed(self, conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "INSERT INTO run_events" in statement and _replay_decision(parameters):
            raw = cursor.connection.cursor()
            raw.execute("DELETE FROM cache_entries")
            self.purged += raw.rowcount
            raw.close()


def _replay_decision(parameters: Any) -> bool:
    values = parameters.values() if isinstance(parameters, dict) else parameters
    # PostgreSQL's driver gets a JSON payload wrapped (psycopg's Json, its value in .obj)
    return any('"replay_cache"' in str(getattr(v, "obj", v)).replace("'", '"') for v in values)


@pytest.fixture
def purge_on_replay() -> Iterator[PurgeOnReplay]:
    hook = PurgeOnReplay()
    event.listen(Engine, "after_cursor_execute", hook.executed)
    try:
        yield hook
    finally:
        event.remove(Engine, "after_cursor_execute", hook.executed)


def test_a_replayed_image_gone_before_its_call_is_reserved_at_its_catalog_price(
    capsys: pytest.CaptureFixture[str], settings: Settings, purge_on_replay: PurgeOnReplay
) -> None:
    first, limit = _first_run_with_a_cent_left(capsys)
    code, again = _generate(capsys, "--budget", "0.01")
    assert purge_on_replay.purged > 0, "the replay was not planned"
    assert "replay_cache" in _actions(again)
    _within_budgets(capsys, first, limit, again)
    # each replayed candidate needs a $0.01 draft or a $0.04 studio image, and the request has
    # $0.01: the studio call is refused before it is made, and the run says why
    assert code == 4 and "budget" in again["reason"], again["reason"]


def _prompt_in_receipt(image: dict[str, Any]) -> str:
    receipt = json.loads(read_png_text(Path(image["path"]).read_bytes())[RECEIPT_KEY])
    prompt: str = receipt["prompt"]
    return prompt


def test_a_request_after_the_brand_kit_changed_is_rendered_from_the_current_kit(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    kit = yaml.safe_load(KIT.read_text())
    assert kit["tone"] == ["warm", "cozy", "artisanal"] and kit["required_terms"] == ["coffee cup"]
    code, _, err = run_cli(capsys, "brands", "add", str(KIT))
    assert code == 0, err

    def generate() -> dict[str, Any]:
        code, out, err = run_cli(
            capsys, "generate", BRIEF, "--brand", "Acme Coffee", "--seed", SEED,
            "--size", "160x160", "--out", str(tmp_path / f"out{len(runs)}"), "--json",
        )  # fmt: skip
        assert code == 0, err
        doc: dict[str, Any] = json.loads(out)
        assert doc["status"] == "succeeded" and doc["images"], doc["reason"]
        runs.append(doc)
        return doc

    runs: list[dict[str, Any]] = []
    old = generate()
    assert "warm, cozy, artisanal" in old["images"][0]["prompt"]

    edited = tmp_path / "acme-edited.yaml"
    edited.write_text(
        yaml.safe_dump(
            kit | {"tone": ["bold", "energetic", "modern"], "required_terms": ["croissant"]}
        )
    )
    code, out, err = run_cli(capsys, "brands", "add", str(edited))
    assert code == 0 and "updated" in out, err

    new = generate()
    assert "replay_cache" not in _actions(new)
    assert new["cost_usd"] > 0 and not any(image["cache_hit"] for image in new["images"])
    for image in new["images"]:
        assert "bold, energetic, modern" in image["prompt"] and "croissant" in image["prompt"]
        assert "warm" not in image["prompt"] and "coffee cup" not in image["prompt"]
        assert _prompt_in_receipt(image) == image["prompt"]
    assert {i["sha256"] for i in new["images"]}.isdisjoint(i["sha256"] for i in old["images"])

    # the same request with the kit unchanged since is a repeat: the current kit's images, free
    repeat = generate()
    assert "replay_cache" in _actions(repeat)
    assert repeat["cost_usd"] == 0 and all(image["cache_hit"] for image in repeat["images"])
    assert [i["prompt"] for i in repeat["images"]] == [i["prompt"] for i in new["images"]]
    assert all(_prompt_in_receipt(image) == image["prompt"] for image in repeat["images"])


def test_a_kit_restored_to_the_content_a_run_used_replays_that_run_at_no_cost(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    """What decides is the kit's content when the request starts, not whether it was replaced
    since (outside tester, session 23): edited, a request is rendered afresh and paid for;
    replaced back by the same content, the same request is the first run's repeat, at $0."""
    code, _, err = run_cli(capsys, "brands", "add", str(KIT))
    assert code == 0, err

    def generate() -> dict[str, Any]:
        code, out, err = run_cli(
            capsys, "generate", BRIEF, "--brand", "Acme Coffee", "--seed", SEED,
            "--size", "160x160", "--out", str(tmp_path / f"out{len(runs)}"), "--json",
        )  # fmt: skip
        assert code == 0, err
        doc: dict[str, Any] = json.loads(out)
        assert doc["status"] == "succeeded" and doc["images"], doc["reason"]
        runs.append(doc)
        return doc

    runs: list[dict[str, Any]] = []

    first = generate()
    assert first["cost_usd"] > 0
    edited = tmp_path / "acme-edited.yaml"
    text = KIT.read_text()
    edited.write_text(text.replace("calm, warm, crafted.", "calm, warm, crafted!"))
    assert edited.read_text() != text
    code, out, err = run_cli(capsys, "brands", "add", str(edited))
    assert code == 0 and "updated" in out, err
    changed = generate()
    # not a repeat: planned and rendered afresh (an edit that does not reach the prompt may
    # meet the generation cache's identical calls: the old kit's memory no longer steers it)
    assert "replay_cache" not in _actions(changed) and "plan" in _actions(changed)

    code, out, err = run_cli(capsys, "brands", "add", str(KIT))
    assert code == 0 and "updated" in out, err
    restored = generate()
    (replay,) = [d for d in restored["decisions"] if d["action"] == "replay_cache"]
    assert first["run_id"] in replay["reason"], replay["reason"]
    assert restored["cost_usd"] == 0 and all(i["cache_hit"] for i in restored["images"])
    assert [i["prompt"] for i in restored["images"]] == [i["prompt"] for i in first["images"]]
