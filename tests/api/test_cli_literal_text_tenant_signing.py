"""What an outside tester found through the CLI: stored text shown as rich markup (a brief
reading "[/red] sale" broke `runs list`; "[redacted email]" vanished), a malformed
BRANDLOOP_TENANT or --tenant accepted, and a failed C2PA signer that did not name the run to
resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from brandloop.api.cli import main
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from brandloop.tools.credentials.devca import make_dev_credentials
from tests.fakes.provider_server import serve
from tests.fakes.remote_signer import FakeRemoteSigner

ROOT = Path(__file__).resolve().parents[2]
ACME = str(ROOT / "examples" / "brands" / "acme-coffee.yaml")
BLOOM = str(ROOT / "examples" / "brands" / "bloom-skincare.yaml")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


def test_stored_text_is_shown_literally_in_every_listing(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # room for the whole brief in the tables
    brief = "a cup next to a sign reading [/red] sale, for ann@example.com"
    code, out, err = run_cli(
        capsys, "generate", brief, "--brand", ACME, "--seed", "4", "--size", "256x256",
        "--no-memory", "--out", str(tmp_path / "out"), "--json",
    )  # fmt: skip
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    code, out, err = run_cli(
        capsys, "memory", "add", "use the [/bold] closing tag look, ask ann@example.com first",
        "--brand", "Acme Coffee",
    )  # fmt: skip
    assert code == 0, err
    shown = "a cup next to a sign reading [/red] sale, for [redacted email]"
    for argv in (["runs", "list"], ["runs", "list", "--wide"], ["runs", "show", run_id]):
        code, out, err = run_cli(capsys, *argv)
        assert code == 0, f"{argv}: {err}"
        assert shown in out, f"{argv}:\n{out}"
    code, out, err = run_cli(capsys, "memory", "search", "closing tag", "--brand", "Acme Coffee")
    assert code == 0, err
    assert "use the [/bold] closing tag look, ask [redacted email] first" in out, out
    code, out, err = run_cli(capsys, "memory", "search", "closing tag", "--brand", "Acme Coffee", "--wide")  # fmt: skip
    assert code == 0 and "[/bold]" in out and "[redacted email]" in out, err
    code, out, err = run_cli(capsys, "brands", "list")
    assert code == 0 and "Acme Coffee" in out, err


def _stored_brands(settings: Settings) -> int:
    db = Database(settings.resolved_database_url)
    try:
        with db.engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM brands")).scalar_one())
    finally:
        db.dispose()


@pytest.mark.parametrize("tenant", ["", "bad tenant!", "x" * 65, "acme\n"])
def test_a_malformed_brandloop_tenant_is_refused_naming_it_and_stores_nothing(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tenant: str,
) -> None:
    run_cli(capsys, "brands", "list")  # the registry exists: what is stored can be counted
    monkeypatch.setenv("BRANDLOOP_TENANT", tenant)
    get_settings.cache_clear()
    for argv in (
        ["brands", "add", BLOOM],
        ["memory", "add", "--brand", BLOOM, "soft light"],
        ["runs", "list"],
    ):
        code, _out, err = run_cli(capsys, *argv)
        assert code == 2, f"{argv}: {err}"
        assert err.startswith("brandloop: error: BRANDLOOP_TENANT: ") and err.count("\n") == 1
    monkeypatch.delenv("BRANDLOOP_TENANT")
    get_settings.cache_clear()
    assert _stored_brands(settings) == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["keys", "list", "--tenant", ""],
        ["keys", "revoke", "key_x", "--tenant", "bad tenant!"],
        ["keys", "create", "--tenant", "", "--role", "admin", "--principal", "ana"],
        ["studio", "link", "--tenant", "", "--principal", "ana"],
        ["gc", "--tenant", "bad tenant!", "--dry-run"],
    ],
)
def test_a_malformed_tenant_option_is_refused(
    capsys: pytest.CaptureFixture[str], settings: Settings, argv: list[str]
) -> None:
    code, _out, err = run_cli(capsys, *argv)
    assert code == 2, err
    assert err.startswith("brandloop: error: ") and err.count("\n") == 1
    assert "--tenant" in err and "must be 1-64 ASCII letters" in err, err


def test_a_failed_remote_signer_names_the_run_to_resume(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    acme = make_dev_credentials(org="Acme Corp", ca_name="Acme Root", signer_name="Acme Signer")
    chain = tmp_path / "chain.pem"
    chain.write_text(acme.chain_pem)
    signer = FakeRemoteSigner(key_pem=acme.key_pem, fail_with=401)
    with serve(signer, prefix="") as base:
        monkeypatch.setenv("BRANDLOOP_C2PA_CERT_CHAIN", str(chain))
        monkeypatch.setenv("BRANDLOOP_C2PA_REMOTE_URL", f"{base}/sign")
        monkeypatch.setenv("BRANDLOOP_C2PA_REMOTE_TOKEN", signer.token)
        get_settings.cache_clear()
        argv = ["generate", "a cup", "--brand", ACME, "--size", "256x256", "--no-memory"]
        code, out, err = run_cli(capsys, *argv, "--seed", "90", "--json")
        assert code == 8, err
        doc = json.loads(out)
        run_id = doc["run_id"]
        assert doc["error"] == "signing-failed" and doc["exit_code"] == 8
        assert doc["resume"] == f"brandloop runs resume {run_id}"
        assert (
            err.startswith("brandloop: error: signing the C2PA manifest failed")
            and err.count("\n") == 1
        )
        assert "HTTP 401" in err and f"`brandloop runs resume {run_id}`" in err
        code, out, err = run_cli(capsys, *argv, "--seed", "91")  # the same without --json
        assert code == 8 and "brandloop runs resume run_" in err, err
        signer.fail_with = None
        code, out, err = run_cli(capsys, "runs", "resume", run_id, "--json")
        assert code == 0, err
        assert json.loads(out)["status"] == "succeeded"
        get_settings.cache_clear()
