"""`brandloop review approve` when the C2PA signer fails while the approval delivers the run:
exit 8 with one line naming the run and that the verdict can be given again (the run waits for
review again, nothing it paid for is lost); given again with the signer back, it delivers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brandloop.api.cli import main
from brandloop.settings import Settings, get_settings
from brandloop.tools.credentials.devca import make_dev_credentials
from tests.fakes.provider_server import serve
from tests.fakes.remote_signer import FakeRemoteSigner

ROOT = Path(__file__).resolve().parents[2]
ACME = str(ROOT / "examples" / "brands" / "acme-coffee.yaml")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


def test_an_approval_stopped_by_its_signer_names_the_run_and_can_be_given_again(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    policy = tmp_path / "agent.yaml"
    policy.write_text("review: {mode: always}\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    acme = make_dev_credentials(org="Acme Corp", ca_name="Acme Root", signer_name="Acme Signer")
    chain = tmp_path / "chain.pem"
    chain.write_text(acme.chain_pem)
    signer = FakeRemoteSigner(key_pem=acme.key_pem, fail_with=503)
    with serve(signer, prefix="") as base:
        monkeypatch.setenv("BRANDLOOP_C2PA_CERT_CHAIN", str(chain))
        monkeypatch.setenv("BRANDLOOP_C2PA_REMOTE_URL", f"{base}/sign")
        monkeypatch.setenv("BRANDLOOP_C2PA_REMOTE_TOKEN", signer.token)
        get_settings.cache_clear()
        argv = ["generate", "a cup", "--brand", ACME, "--size", "256x256", "--no-memory"]
        code, out, err = run_cli(capsys, *argv, "--seed", "93", "--json")
        assert code == 0, err
        run_id = json.loads(out)["run_id"]
        assert json.loads(out)["status"] == "awaiting_review"

        code, out, err = run_cli(capsys, "review", "approve", run_id)
        assert code == 8, err
        assert err.startswith("brandloop: error: signing the C2PA manifest failed"), err
        assert err.count("\n") == 1 and "HTTP 503" in err, err
        assert f"run {run_id} waits for review again" in err, err
        assert f"`brandloop review approve {run_id}` gives the verdict again" in err, err

        code, out, err = run_cli(capsys, "review", "approve", run_id, "--json")
        assert code == 8, err
        doc = json.loads(out)
        assert doc["error"] == "signing-failed" and doc["exit_code"] == 8
        assert doc["run_id"] == run_id and doc["retry"] == f"brandloop review approve {run_id}"
        code, out, err = run_cli(capsys, "runs", "list", "--json")
        [listed] = json.loads(out)
        assert listed["status"] == "awaiting_review", listed

        signer.fail_with = None
        code, out, err = run_cli(capsys, "review", "approve", run_id, "--json")
        assert code == 0, err
        assert json.loads(out)["status"] == "succeeded"
        get_settings.cache_clear()
