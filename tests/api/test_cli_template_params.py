"""A template's ``params`` are the defaults of every call made from it (an outside tester's
report: ``params: {quality: high, steps: 30}`` ran at quality low and ``steps`` never reached
the provider nor the receipt), through ``brandloop templates ...`` and ``generate``; and
params that are not a mapping of scalars, or set a field brandloop sets itself, are refused
at ``create`` / ``new-version`` / ``import`` (docs/templates.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brandloop.settings import Settings, get_settings
from tests.api.test_cli import BRANDS, data_snapshot, run_cli
from tests.fakes.provider_server import FakeImagesApp, serve

KIT = str(BRANDS / "acme-coffee.yaml")
KEY = "sk-test-template-params-0001"
#: an OpenAI-shaped key nobody configured here: found by its shape
SECRET = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
BODY = (
    "body: '{{ brief }}. A {{ tone }} image for {{ brand }}. {{ palette_clause }}.'\n"
    "negative_body: '{{ brand_negative }}'\n"
)


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, (out, err)
    return out


def in_production(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, params: str
) -> None:
    """``name``@1 with ``params``, reviewed and labelled production as a team would."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(BODY + f"params: {params}\n", encoding="utf-8")
    ok(capsys, "templates", "create", name, "--file", str(path), "--as", "ana")
    ok(capsys, "templates", "submit", name, "1", "--as", "ana")
    ok(capsys, "templates", "approve", name, "1", "--as", "lee", "--note", "ok")
    ok(capsys, "templates", "label", name, "production", "1", "--as", "lee")


def test_a_templates_params_reach_the_provider_the_attempts_and_the_receipts(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    in_production(capsys, tmp_path, "hi-q", "{quality: high, steps: 30}")
    fake = FakeImagesApp(api_key=KEY, render=True)
    with serve(fake) as base_url:
        monkeypatch.setenv("BRANDLOOP_OPENAI_API_KEY", KEY)
        monkeypatch.setenv("BRANDLOOP_OPENAI_BASE_URL", base_url)
        get_settings.cache_clear()
        try:
            out = ok(
                capsys, "generate", "a teal coffee cup on a cream table", "--brand", KIT,
                "--template", "hi-q", "--model", "openai/gpt-image-1", "--size", "1024x1024",
                "--n", "2", "--budget", "2", "--json", "--out", str(tmp_path / "out"),
            )  # fmt: skip
        finally:
            get_settings.cache_clear()
    doc = json.loads(out)
    bodies = [r["body"] for r in fake.requests]
    assert bodies, "the provider was called"
    for body in bodies:  # the template's quality picked the arm; steps went as it is
        assert body["quality"] == "high" and body["steps"] == 30, body
    plan = next(d for d in doc["decisions"] if d["action"] == "plan")
    assert "template hi-q@1 sets quality high" in plan["reason"], plan["reason"]
    assert "openai/gpt-image-1@high" in plan["reason"], plan["reason"]

    trace = json.loads(ok(capsys, "runs", "show", doc["run_id"], "--json"))
    assert trace["attempts"]
    for attempt in trace["attempts"]:
        assert attempt["template"] == "hi-q@1", attempt
        assert attempt["params"] == {"quality": "high", "steps": 30}, attempt
    receipts = json.loads((tmp_path / "out" / "receipt.json").read_text())["receipts"]
    assert receipts, doc
    for receipt in receipts:
        assert receipt["params"] == {"quality": "high", "steps": 30}, receipt
    # the price planned (and reserved) is the one of the setting sent: high, not low
    assert "2× openai/gpt-image-1@high ($0.334" in plan["reason"], plan["reason"]


def test_a_quality_no_usable_model_has_is_named_and_the_run_goes_on(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    """The procedural models have no quality settings: the plan says so and plans as before;
    the template's other params still go with every call."""
    in_production(capsys, tmp_path, "no-q", "{quality: high, steps: 30, style: vivid}")
    code, out, err = run_cli(
        capsys, "generate", "a teal coffee cup on a cream table", "--brand", KIT,
        "--template", "no-q", "--size", "256x256", "--seed", "7", "--json",
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 0, (out, err)
    doc = json.loads(out)
    plan = next(d for d in doc["decisions"] if d["action"] == "plan")
    assert (
        "template no-q@1 sets quality high, which no usable model has: planned without it"
        in plan["reason"]
    ), plan["reason"]
    trace = json.loads(ok(capsys, "runs", "show", doc["run_id"], "--json"))
    for attempt in trace["attempts"]:
        assert attempt["params"] == {"steps": 30, "style": "vivid"}, attempt


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("{seed: 3}", "params: 'seed' is set by brandloop itself"),
        ("{steps: 30, prompt: x}", "params: 'prompt' is set by brandloop itself"),
        ("{size: 512x512}", "params: 'size' is set by brandloop itself"),
        ("{n: 4}", "params: 'n' is set by brandloop itself"),
        ("{model: x}", "params: 'model' is set by brandloop itself"),
        ("{lora: {name: x}}", "params.lora: must be text, a number or true/false, not a mapping"),
        ("{tags: [a, b]}", "params.tags: must be text, a number or true/false, not a list"),
        ("{steps: null}", "params.steps: must be text, a number or true/false, not null"),
        ("{cfg: .nan}", "params.cfg: nan is not a finite number"),
        ("{quality: 3}", "params.quality: must be a quality setting's name, not 3"),
        # names are words; reserved ones in any case; text is bounded (an outside tester's
        # report: each of these was stored and sent with every call)
        ('{"a b\\n": 2}', "params: 'a b\\n' is not a param name: 1-64 of A-Z a-z 0-9 _ . -"),
        # (YAML writes a key past 1,024 characters as an explicit "? key")
        ("\n  ? " + "k" * 5000 + "\n  : 1", f"params: {'k' * 24!r}… is not a param name"),
        ("{Seed: 3, SIZE: 1x1}", "params: 'Seed' is set by brandloop itself"),
        ("{SIZE: 1x1}", "params: 'SIZE' is set by brandloop itself"),
        ("{style: " + "x" * 300_000 + "}", "params.style: the text is 300,000 characters long"),
        # a key-shaped name or value is named, never echoed (it reached receipts and PNGs)
        (f"{{api_key: {SECRET}}}", "params.api_key: the value looks like an API key"),
        (f"{{note: 'use {SECRET} here'}}", "params.note: the value looks like an API key"),
        ("{api_key: hunter2hunter2}", "params.api_key: the value looks like an API key"),
        (f"{{steps: 3, {SECRET}: 1}}", "params: the name of param #2 (in file order) looks like"),
        # a model listed twice (the API refuses a format listed twice the same way)
        (
            "{}\nmodel_hints: [procedural/studio, procedural/draft, procedural/studio]",
            "model_hints lists procedural/studio twice",
        ),
    ],
)
def test_params_that_are_not_call_defaults_are_refused_at_create_and_new_version(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    data_dir: Path,
    tmp_path: Path,
    params: str,
    message: str,
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(BODY + "params: {steps: 30}\n", encoding="utf-8")
    ok(capsys, "templates", "create", "kept", "--file", str(good), "--as", "ana")
    bad = tmp_path / "bad.yaml"
    bad.write_text(BODY + f"params: {params}\n", encoding="utf-8")
    before = data_snapshot(data_dir)
    for argv in (
        ("create", "fresh", "--file", str(bad), "--as", "ana"),
        ("new-version", "kept", "--file", str(bad), "-m", "more", "--as", "ana"),
    ):
        code, out, err = run_cli(capsys, "templates", *argv)
        assert code == 2, (argv, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], err
        assert "AbCdEf" not in err and "hunter2" not in err, "a secret is never echoed"
        assert data_snapshot(data_dir) == before, "a refusal stores nothing"
    shown = json.loads(ok(capsys, "templates", "show", "kept@1", "--json"))
    assert [v["params"] for v in shown["selected"]] == [{"steps": 30}]
    assert [v["version"] for v in shown["versions"]] == [1]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("{steps: 30, seed: 4}", "imp@1: params: 'seed' is set by brandloop itself"),
        ("{steps: 30, Seed: 4}", "imp@1: params: 'Seed' is set by brandloop itself"),
        ('{"a b": 1}', "imp@1: params: 'a b' is not a param name"),
        (f"{{api_key: {SECRET}}}", "imp@1: params.api_key: the value looks like an API key"),
    ],
)
def test_import_refuses_a_new_version_with_reserved_params(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    data_dir: Path,
    tmp_path: Path,
    params: str,
    message: str,
) -> None:
    folder = tmp_path / "git"
    folder.mkdir()
    (folder / "imp.yaml").write_text(
        "name: imp\nversions:\n"
        f"- version: 1\n  author: ana\n  body: '{{{{ brief }}}}'\n  params: {params}\n",
        encoding="utf-8",
    )
    # the registry as it is before: shipped templates seeded, the catalog's models listed
    ok(capsys, "templates", "list")
    ok(capsys, "models", "list")
    before = data_snapshot(data_dir)
    code, out, err = run_cli(capsys, "templates", "import", str(folder), "--as", "ana")
    assert code == 2, (out, err)
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "AbCdEf" not in err
    assert data_snapshot(data_dir) == before
