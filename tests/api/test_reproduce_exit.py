"""`brandloop runs reproduce` exits 5 (providers unavailable, README's exit codes) when not one
image could be re-rendered: an outside tester's reproduction with every row `failed` (the
provider answering 500) exited 0, so a script could not tell it from a reproduction. The
provider is the fake OpenAI-compatible server (the outside world)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brandloop.artifacts import ArtifactStore
from brandloop.settings import Settings, get_settings
from tests.api.test_cli import BRANDS, run_cli
from tests.fakes.provider_server import FakeImagesApp, serve

KEY = "sk-test-reproduce-0123456789"


def test_a_reproduction_that_reproduced_nothing_exits_5(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = FakeImagesApp(api_key=KEY, image_side=256, render=True)  # on-brand pictures
    with serve(app) as base_url:
        monkeypatch.setenv("BRANDLOOP_OPENAI_API_KEY", KEY)
        monkeypatch.setenv("BRANDLOOP_OPENAI_BASE_URL", base_url)
        get_settings.cache_clear()
        code, out, err = run_cli(
            capsys, "generate", "a steaming cup", "--brand", str(BRANDS / "acme-coffee.yaml"),
            "--model", "openai/gpt-image-1-mini", "--seed", "4", "--no-memory", "--budget", "1",
            "--out", str(tmp_path / "o"), "--json",
        )  # fmt: skip
        assert code == 0, err
        run_id = json.loads(out)["run_id"]
        app.faults.extend(["500"] * 40)  # every try of every image fails from here
        for json_flag in ((), ("--json",)):
            code, out, err = run_cli(capsys, "runs", "reproduce", run_id, *json_flag)
            assert code == 5, (code, err, out[-600:])
            assert err.strip().count("\n") == 0 and "could be reproduced" in err, err
            assert ("HTTP 500" in err or "circuit open" in err) and KEY not in err + out
            if json_flag:
                assert {i["verdict"] for i in json.loads(out)["images"]} == {"failed"}
            else:
                assert "failed" in out  # the table is shown, then the line
    get_settings.cache_clear()


def test_a_raw_original_lost_from_the_store_is_still_byte_identical_by_its_hash(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    """The receipt's hash decides byte-identity: a raw original gone from the artifact store
    (a disk restored without it) re-rendered to the same bytes is `byte-identical` and is kept
    again. It was `failed` with exit 5, "providers unavailable", after paying (outside
    tester)."""
    code, out, err = run_cli(
        capsys, "generate", "a steaming cup", "--brand", str(BRANDS / "acme-coffee.yaml"),
        "--seed", "4", "--no-memory", "--size", "256x256", "--out", str(tmp_path / "o"), "--json",
    )  # fmt: skip
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    code, out, err = run_cli(capsys, "runs", "show", run_id, "--json")
    assert code == 0, err
    sources = {r["source_sha256"] for r in json.loads(out)["receipts"] if r.get("source_sha256")}
    assert sources, out[-600:]
    store = ArtifactStore(settings.artifacts_dir)
    for source in sources:
        store.locate(source).rename(tmp_path / source)  # lost from the store, rows kept
    code, out, err = run_cli(capsys, "runs", "reproduce", run_id, "--json")
    assert code == 0, err
    images = json.loads(out)["images"]
    assert {i["verdict"] for i in images} == {"byte-identical"}, images
    assert all(store.exists(source) for source in sources)
