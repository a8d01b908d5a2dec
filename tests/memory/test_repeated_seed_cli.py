"""One seed under several of the brand's accepted prompts (a run that reused a recalled seed
stores it again): a run of two or more images plans it once, and no run sends one image
request - model, quality setting, prompt, negative prompt, seed, size - twice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from brandloop.agent.runner import open_memory
from brandloop.settings import Settings, get_settings
from tests.memory.test_memory_cli import ACME, brand_id_of, cli


def generate(capsys: pytest.CaptureFixture[str], brief: str, *argv: str) -> dict[str, Any]:
    code, out, err = cli(capsys, "generate", brief, "--brand", "Acme Coffee", *argv, "--json")
    assert out, err
    return {"code": code, **json.loads(out)}


def image_request(attempt: dict[str, Any]) -> tuple[Any, ...]:
    """What decides the bytes an attempt's call returned."""
    return (
        attempt["model"],
        attempt["params"].get("quality"),
        attempt["prompt"],
        attempt["negative_prompt"],
        attempt["seed_requested"],
        attempt["size"],
    )


def two_images(capsys: pytest.CaptureFixture[str], entry: str, tmp_path: Path) -> str:
    """The run id of a request for two images of one brief, by ``generate`` or by a campaign
    asset (no seed either way: memory's seeds are the ones used)."""
    brief = "a cup of coffee on a bench"
    if entry == "generate":
        run = generate(capsys, brief, "--n", "2")
        assert run["code"] == 0 and run["status"] == "succeeded", run["decisions"]
        return str(run["run_id"])
    spec = tmp_path / "campaign.yaml"
    spec.write_text(
        "name: bench\nbrand: Acme Coffee\nbudget_usd: 0.3\n"
        f'assets:\n  - {{id: bench, brief: "{brief}", formats: ["1024x1024"], count: 2}}\n'
    )
    code, out, err = cli(capsys, "campaign", "run", str(spec), "--json")
    assert code == 0, err
    (asset,) = json.loads(out)["assets"]
    assert asset["status"] == "succeeded", asset
    return str(asset["run_id"])


@pytest.mark.parametrize("entry", ["generate", "campaign"])
def test_a_seed_remembered_twice_is_not_paid_for_twice(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    entry: str,
) -> None:
    monkeypatch.chdir(tmp_path)  # generate writes its images under ./out
    # unseeded runs draw their seeds: no off-palette accent, so whatever seeds they draw the
    # runs end accepted (an asset once ended partial) and the test is about the seeds alone
    monkeypatch.setenv("BRANDLOOP_PROCEDURAL_ACCENT_CHANCE", "0")
    get_settings.cache_clear()
    assert cli(capsys, "brands", "add", ACME)[0] == 0
    first = generate(capsys, "a cup of coffee on a table")
    assert first["status"] == "succeeded", first["decisions"]
    memory = open_memory(settings)
    brand = brand_id_of(settings, "Acme Coffee")
    (kept,) = [
        hit
        for hit in memory.search(tenant="default", brand=brand, query="a cup of coffee", k=10)
        if hit.kind == "prompt"
    ]
    # a second one-image run that reused the first's recalled seed, as the remember node
    # stored it: another accepted prompt under the same seed
    memory.remember_prompt(
        tenant="default",
        brand=brand,
        prompt=kept.text.replace("table", "shelf"),
        model=str(kept.metadata["model"]),
        seed=int(kept.metadata["seed"]),
        template=str(kept.metadata["template"]),
        run_id="run_that_reused_the_seed",
        scores={"composite": 0.9},
        kit=str(kept.metadata["kit"]),
    )

    run_id = two_images(capsys, entry, tmp_path)
    code, out, err = cli(capsys, "runs", "show", run_id, "--json")
    assert code == 0, err
    shown = json.loads(out)
    decisions = [event["payload"] for event in shown["events"] if event["kind"] == "decision"]
    recall = next(d for d in decisions if d["node"] == "recall")
    assert "2 accepted prompts with seeds (1 distinct)" in recall["reason"], recall
    plan = next(d for d in decisions if d["action"] == "plan")
    # before: "reusing 2 remembered seed(s)", the same seed for both images of round one
    assert "reusing 1 remembered seed(s)" in plan["reason"], plan
    attempts = shown["attempts"]
    requests = [image_request(a) for a in attempts]
    # before: round one sent seed S twice with one prompt - one image, billed twice, the copy
    # rejected as a duplicate, and two more rounds ($0.13 for two $0.04 images)
    assert len(set(requests)) == len(requests), requests
    assert int(kept.metadata["seed"]) in [a["seed_requested"] for a in attempts]
    assert not any(a["scores"].get("duplicate") == 0.0 for a in attempts), attempts
    accepted = [a for a in attempts if a["outcome"] == "accepted"]
    assert len(accepted) == 2
    assert shown["run"]["cost_usd"] == pytest.approx(sum(a["cost_usd"] for a in accepted))
