"""A brand kit replaced since its accepted images: memory judges and steers new runs only by
what was made under the current kit, and a repeat of a seeded request remembers nothing new."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.agent.runner import open_memory
from brandloop.settings import Settings
from tests.api.http.conftest import Keys, keys, make_client  # noqa: F401 (fixtures)
from tests.memory.test_memory_cli import ACME, brand_id_of, cli


def red_kit(tmp_path: Path) -> Path:
    """Acme Coffee with its primary teal replaced by brick red (the team's kit edit)."""
    text = Path(ACME).read_text().replace("#0f766e", "#b91c1c").replace("teal", "brick red")
    path = tmp_path / "acme-red.yaml"
    path.write_text(text)
    return path


def generate(capsys: pytest.CaptureFixture[str], brief: str, seed: int) -> dict[str, Any]:
    code, out, err = cli(
        capsys, "generate", brief, "--brand", "Acme Coffee", "--seed", str(seed), "--json"
    )
    assert out, err
    return {"code": code, **json.loads(out)}


def test_a_replaced_kit_is_not_judged_against_the_old_kits_images(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    assert cli(capsys, "brands", "add", ACME)[0] == 0
    first = generate(capsys, "a steaming coffee cup on a wooden table", 3)
    assert first["status"] == "succeeded"
    assert cli(capsys, "brands", "add", str(red_kit(tmp_path)))[0] == 0
    # memory on: the new palette's images were compared with the teal kit's accepted image
    # (similarity 0.24-0.36 < 0.5) and the run failed after 4 rounds, exit 4
    later = generate(capsys, "a steaming coffee cup on a cafe counter", 11)
    assert later["code"] == 0 and later["status"] == "succeeded", later["decisions"]
    recall = next(d for d in later["decisions"] if d["node"] == "recall")
    # the teal kit's prompt does not steer the red kit's run (model, seed, emphasis)
    assert recall["reason"].startswith("0 memories"), recall
    code, out, _ = cli(capsys, "runs", "show", later["run_id"], "--json")
    assert code == 0
    for attempt in json.loads(out)["attempts"]:
        assert "similarity" not in attempt["scores"] or attempt["scores"]["similarity"] > 0.5
    # both kits' records are kept; only the current kit's are read
    memory = open_memory(settings)
    assert memory.count(tenant="default", brand=brand_id_of(settings, "Acme Coffee")) == 4


def test_a_repeat_remembers_nothing_new(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    assert cli(capsys, "brands", "add", ACME)[0] == 0
    memory = open_memory(settings)
    counts = []
    for _ in range(3):
        run = generate(capsys, "a steaming coffee cup on a wooden table", 3)
        assert run["status"] == "succeeded"
        counts.append(memory.count(tenant="default", brand=brand_id_of(settings, "Acme Coffee")))
    # each free replay wrote the image's prompt and descriptor again: 2, 4, 6
    assert counts == [2, 2, 2]


def test_records_without_a_kit_count_only_after_the_kits_last_change(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    tmp_path: Path,
    make_client: Callable[..., TestClient],  # noqa: F811 (the HTTP fixtures)
    keys: Keys,  # noqa: F811
) -> None:
    """Records written before the kit digest was kept: one older than the brand's last kit
    change is not the current kit's; one written since is. A run its images fail names the
    signal that failed, with the value and the bar."""
    assert cli(capsys, "brands", "add", ACME)[0] == 0
    assert generate(capsys, "a steaming coffee cup on a wooden table", 3)["status"] == "succeeded"
    memory = open_memory(settings)
    brand = brand_id_of(settings, "Acme Coffee")
    (teal,) = memory.descriptors(tenant="default", brand=brand)

    def legacy(run_id: str) -> None:
        # as the remember node wrote them before: no kit digest
        memory.remember_descriptor(
            tenant="default",
            brand=brand,
            run_id=run_id,
            attempt_id="a1",
            colours=[(hx, 0.2) for hx in str(teal.metadata["colours"]).split()],
            model=str(teal.metadata["model"]),
            seed=int(teal.metadata["seed"]) + len(run_id),
            image_descriptor=str(teal.metadata["image_descriptor"]),
        )

    legacy("before-the-change")
    assert memory.forget(tenant="default", brand=brand, record_id=teal.id) == 1
    assert cli(capsys, "brands", "add", str(red_kit(tmp_path)))[0] == 0
    later = generate(capsys, "a steaming coffee cup on a cafe counter", 11)
    assert later["status"] == "succeeded", later["decisions"]

    # the red kit's own images leave memory; a teal image written since the change counts
    assert memory.forget(tenant="default", brand=brand, before=datetime.now(UTC)) == 4
    legacy("written-after-the-change")
    judged = generate(capsys, "a steaming coffee cup on a cafe counter at dawn", 11)
    assert judged["code"] == 4 and judged["status"] == "failed"
    reasons = [d["reason"] for d in judged["decisions"] if d["action"] == "new_seeds"]
    assert reasons and all("similarity 0." in r and "< 0.50" in r for r in reasons), reasons
    # the API's trace of the run carries the same words
    trace = make_client().get(
        f"/v1/runs/{judged['run_id']}/trace", headers=keys["default", "viewer"]
    )
    assert trace.status_code == 200, trace.text
    assert all(reason in trace.text for reason in reasons)


def test_a_refreshed_brand_with_a_long_history_finds_its_new_kits_records(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    """A brand refreshed after more accepted images than similarity compares with (100), and
    with old prompts nearer a new brief than the new kit's: its runs still recall the new
    kit's prompt and are judged against the new kit's images."""
    assert cli(capsys, "brands", "add", ACME)[0] == 0
    assert generate(capsys, "a steaming coffee cup on a wooden table", 3)["status"] == "succeeded"
    memory = open_memory(settings)
    brand = brand_id_of(settings, "Acme Coffee")
    (teal,) = memory.descriptors(tenant="default", brand=brand)
    brief = "a steaming coffee cup on a cafe counter"
    for n in range(100):  # the teal kit's history, older than the refresh
        memory.remember_descriptor(
            tenant="default",
            brand=brand,
            run_id=f"teal-{n}",
            attempt_id="a1",
            colours=[(hx, 0.2) for hx in str(teal.metadata["colours"]).split()],
            model=str(teal.metadata["model"]),
            seed=1000 + n,
            image_descriptor=str(teal.metadata["image_descriptor"]),
            kit=str(teal.metadata["kit"]),
        )
        memory.remember_prompt(  # the very words of the later brief: nearest to it
            tenant="default",
            brand=brand,
            prompt=f"{brief} #{n}",
            model=str(teal.metadata["model"]),
            seed=1000 + n,
            template="default@1",
            run_id=f"teal-{n}",
            scores={"composite": 0.9},
            kit=str(teal.metadata["kit"]),
        )
    assert cli(capsys, "brands", "add", str(red_kit(tmp_path)))[0] == 0
    refreshed = generate(capsys, "a steaming coffee cup on a wooden table", 11)
    assert refreshed["status"] == "succeeded", refreshed["decisions"]

    later = generate(capsys, brief, 12)
    assert later["status"] == "succeeded", later["decisions"]
    recall = next(d for d in later["decisions"] if d["node"] == "recall")
    # before: the 5 nearest prompts were all the teal kit's and were dropped: "0 memories"
    assert recall["reason"].startswith("1 memories"), recall
    code, out, _ = cli(capsys, "runs", "show", later["run_id"], "--json")
    assert code == 0
    scored = [a["scores"] for a in json.loads(out)["attempts"] if a["scores"]]
    # before: the oldest 100 descriptors were all the teal kit's, so nothing to compare with
    assert scored and all("similarity" in scores for scores in scored), scored
