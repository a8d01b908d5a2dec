"""A campaign's anchor colours are the brand's colours as its first accepted image rendered
them: an off-palette accent that image carried is never written into the campaign's later
prompts (an outside tester saw Nordlys' campaign told to follow magenta #fb05c7)."""

from __future__ import annotations

import json

import pytest

from brandloop.agent.runner import open_memory
from brandloop.settings import Settings
from tests.memory.test_memory_cli import ACME, brand_id_of, cli

TEAL_AS_RENDERED = "#127a70"  # a few ΔE from Acme's teal #0f766e
MAGENTA = "#fb05c7"  # an accent far from every Acme colour
ESPRESSO_AS_RENDERED = "#4d2e2b"


def test_an_off_palette_accent_of_the_first_image_is_not_a_campaign_colour(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    assert cli(capsys, "brands", "add", ACME)[0] == 0
    code, out, err = cli(
        capsys, "generate", "a steaming coffee cup on a wooden table", "--brand", "Acme Coffee",
        "--campaign", "fall", "--seed", "3", "--json",
    )  # fmt: skip
    assert code == 0, err
    memory = open_memory(settings)
    brand = brand_id_of(settings, "Acme Coffee")
    (first,) = memory.descriptors(tenant="default", brand=brand, campaign_id="fall")
    # the campaign's first accepted image, as if it had carried a magenta accent
    assert memory.forget(tenant="default", brand=brand, record_id=first.id) == 1
    memory.remember_descriptor(
        tenant="default",
        brand=brand,
        run_id=json.loads(out)["run_id"],
        attempt_id="a1",
        colours=[(TEAL_AS_RENDERED, 0.5), (MAGENTA, 0.3), (ESPRESSO_AS_RENDERED, 0.2)],
        model=str(first.metadata["model"]),
        seed=int(first.metadata["seed"]),
        campaign_id="fall",
        image_descriptor=str(first.metadata["image_descriptor"]),
        kit=str(first.metadata["kit"]),
    )

    code, out, err = cli(
        capsys, "generate", "a coffee cup by a rainy window", "--brand", "Acme Coffee",
        "--campaign", "fall", "--seed", "4", "--json",
    )  # fmt: skip
    assert code == 0, err
    later = json.loads(out)
    recall = next(d for d in later["decisions"] if d["node"] == "recall")
    assert f"campaign colours {TEAL_AS_RENDERED}, {ESPRESSO_AS_RENDERED}" in recall["reason"]
    assert MAGENTA not in recall["reason"], recall
    code, out, _ = cli(capsys, "runs", "show", later["run_id"], "--json")
    prompts = [attempt["prompt"] for attempt in json.loads(out)["attempts"]]
    assert prompts and all(TEAL_AS_RENDERED in p for p in prompts), prompts
    assert not any(MAGENTA in p for p in prompts), prompts
