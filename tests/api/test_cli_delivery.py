"""Where a run's PNGs and receipt.json go, through the CLI (outside tester 25d, defects 2 and 6).

* A run that ``generate --out DIR`` did not finish - its signer down (exit 8), or held for
  review - is finished by ``brandloop runs resume RUN`` or ``brandloop review approve RUN``;
  those wrote no folder at all. They now deliver to the folder generate was given (and say
  so), or to ``--out DIR``, exactly as generate writes it.
* ``generate --out DIR`` into a folder holding another run's export silently replaced that
  run's receipt.json; it is now refused (exit 2, one line naming the other run, nothing
  stored) unless ``--force``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from brandloop.settings import Settings, get_settings
from brandloop.tools.credentials.devca import make_dev_credentials
from tests.api.test_cli import BRANDS, data_snapshot, run_cli
from tests.fakes.provider_server import serve
from tests.fakes.remote_signer import FakeRemoteSigner

ACME = str(BRANDS / "acme-coffee.yaml")
GENERATE = ("generate", "a cup", "--brand", ACME, "--size", "256x256", "--no-memory")


def _json(out: str, err: str) -> dict[str, Any]:
    assert out, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def _export(folder: Path) -> tuple[list[str], dict[str, Any]]:
    """The files of an export folder and its receipt.json."""
    names = sorted(p.name for p in folder.iterdir())
    return names, json.loads((folder / "receipt.json").read_text())


def _assert_delivered(
    capsys: pytest.CaptureFixture[str], folder: Path, result: dict[str, Any]
) -> None:
    """``folder`` holds what ``generate --out`` writes for ``result``: its signed images,
    named NN-<sha12>, and a receipt.json with the run (paths in the folder) and each
    image's receipt; and every image verifies against the registry."""
    names, document = _export(folder)
    images = result["images"]
    assert images, result
    expected = [f"{i:02d}-{image['sha256'][:12]}.png" for i, image in enumerate(images, 1)]
    assert names == sorted([*expected, "receipt.json"])
    assert result["receipt_path"] == str(folder / "receipt.json")
    assert [image["path"] for image in images] == [str(folder / name) for name in expected]
    assert document["run"] == result
    assert [r["sha256"] for r in document["receipts"]] == [i["sha256"] for i in images]
    code, out, err = run_cli(capsys, "verify", *(str(folder / name) for name in expected))
    assert code == 0, out + err
    assert out.count(f"run {result['run_id']}") == len(images) and "receipt matches" in out


@pytest.fixture
def review_always(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policy = tmp_path / "agent.yaml"
    policy.write_text("review: {mode: always}\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    get_settings.cache_clear()


def test_a_run_its_signer_stopped_is_delivered_by_runs_resume_to_the_folder_generate_was_given(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    acme = make_dev_credentials(org="Acme Corp", ca_name="Acme Root", signer_name="Acme Signer")
    chain = tmp_path / "chain.pem"
    chain.write_text(acme.chain_pem)
    signer = FakeRemoteSigner(key_pem=acme.key_pem, fail_with=503)
    folder = tmp_path / "delivery"
    with serve(signer, prefix="") as base:
        monkeypatch.setenv("BRANDLOOP_C2PA_CERT_CHAIN", str(chain))
        monkeypatch.setenv("BRANDLOOP_C2PA_REMOTE_URL", f"{base}/sign")
        monkeypatch.setenv("BRANDLOOP_C2PA_REMOTE_TOKEN", signer.token)
        get_settings.cache_clear()
        code, out, err = run_cli(capsys, *GENERATE, "--seed", "21", "--out", str(folder), "--json")
        assert code == 8, err
        run_id = _json(out, err)["run_id"]
        assert not folder.exists()

        signer.fail_with = None
        # from another working directory: the folder is remembered as an absolute path
        monkeypatch.chdir(tmp_path / "..")
        code, out, err = run_cli(capsys, "runs", "resume", run_id)
        assert code == 0, err
        assert out.count("\n") == 1, out
        assert out.startswith(f"{run_id} succeeded: ")
        assert f"PNGs and receipt.json in {folder} (the --out folder generate was given)" in out

        code, out, err = run_cli(capsys, "runs", "resume", run_id, "--json")
        assert code == 0, err
        result = _json(out, err)
        # a finished run with no --out is its result; the folder written once is left alone
        assert result["receipt_path"] is None
        code, out, err = run_cli(capsys, "runs", "resume", run_id, "--json", "--out", str(folder))
        assert code == 0, err  # its own export: written again, not refused
        _assert_delivered(capsys, folder, _json(out, err))
    get_settings.cache_clear()


def test_review_approve_delivers_to_the_folder_generate_was_given_or_to_out(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    review_always: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # generate's default folder, out/RUN, is made here
    remembered, elsewhere = tmp_path / "remembered", tmp_path / "elsewhere"
    code, out, err = run_cli(capsys, *GENERATE, "--seed", "8", "--out", str(remembered))
    assert code == 0, err
    assert f"delivers the accepted images to {remembered}" in out
    assert not remembered.exists()
    code, out, err = run_cli(capsys, "runs", "list", "--json")
    [held] = json.loads(out)
    assert held["status"] == "awaiting_review"

    code, out, err = run_cli(capsys, "review", "approve", held["run_id"], "--note", "ok")
    assert code == 0, err
    assert out.count("\n") == 1, out
    assert f"{held['run_id']} succeeded: 1 delivered" in out
    assert f"PNGs and receipt.json in {remembered} (the --out folder generate was given)" in out
    code, out, err = run_cli(capsys, "runs", "resume", held["run_id"], "--json")
    assert code == 0, err
    approved = _json(out, err)
    approved_there = {**approved, "receipt_path": str(remembered / "receipt.json")}
    names, document = _export(remembered)
    assert document["run"]["run_id"] == held["run_id"] and len(names) == 2
    assert document["run"]["receipt_path"] == approved_there["receipt_path"]

    # approve --out DIR: there instead, and --json says where
    code, out, err = run_cli(capsys, *GENERATE, "--seed", "9", "--json")
    assert code == 0, err
    second = _json(out, err)
    assert second["status"] == "awaiting_review"
    argv = ("review", "approve", second["run_id"], "--out", str(elsewhere), "--json")
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    _assert_delivered(capsys, elsewhere, _json(out, err))
    assert not Path("out", second["run_id"]).exists()  # not the generate default as well


def test_an_approval_into_a_folder_it_cannot_use_is_refused_before_the_verdict(
    capsys: pytest.CaptureFixture[str], settings: Settings, review_always: None, tmp_path: Path
) -> None:
    code, out, err = run_cli(capsys, *GENERATE, "--seed", "8", "--json")
    run_id = _json(out, err)["run_id"]
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    before = data_snapshot(settings.data_dir)
    code, out, err = run_cli(capsys, "review", "approve", run_id, "--out", str(a_file))
    assert code == 2 and out == ""
    assert err == f"brandloop: error: --out {a_file} is a file, not a folder\n"
    assert data_snapshot(settings.data_dir) == before  # no verdict recorded
    code, out, err = run_cli(capsys, "runs", "list", "--json")
    assert json.loads(out)[0]["status"] == "awaiting_review"


def test_generate_into_another_runs_export_is_refused_unless_forced(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "shared"
    code, out, err = run_cli(capsys, *GENERATE, "--seed", "3", "--out", str(folder), "--json")
    assert code == 0, err
    first = _json(out, err)
    files, receipt = _export(folder)
    assert receipt["run"]["run_id"] == first["run_id"]
    stamp = os.stat(folder / "receipt.json").st_mtime_ns
    before = data_snapshot(settings.data_dir)

    code, out, err = run_cli(capsys, *GENERATE, "--seed", "55", "--out", str(folder))
    assert code == 2 and out == ""
    assert err == (
        f"brandloop: error: --out {folder} holds the export of run {first['run_id']} (its "
        "receipt.json); give another folder, or --force to replace that receipt.json\n"
    )
    assert data_snapshot(settings.data_dir) == before  # nothing spent or stored
    assert _export(folder) == (files, receipt)
    assert os.stat(folder / "receipt.json").st_mtime_ns == stamp

    # a receipt.json that is no run's is not replaced either
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "receipt.json").write_text("my own notes\n")
    code, out, err = run_cli(capsys, *GENERATE, "--seed", "55", "--out", str(tmp_path / "mine"))
    assert code == 2 and "holds a receipt.json that is not a brandloop run's" in err, err
    assert (tmp_path / "mine" / "receipt.json").read_text() == "my own notes\n"

    code, out, err = run_cli(
        capsys, *GENERATE, "--seed", "55", "--out", str(folder), "--force", "--json"
    )
    assert code == 0, err
    second = _json(out, err)
    names, replaced = _export(folder)
    assert replaced["run"]["run_id"] == second["run_id"]
    assert set(files) < set(names)  # the first run's PNG stays; its receipt is in the registry
