"""Bad input through the real CLI: malformed files, settings, numbers, text and output paths
each give exit 2 and one line on stderr that says what is wrong and where, before anything is
spent or stored (README: "2 bad input", "Errors are one line on stderr")."""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from brandloop.api.cli.gc import _plain
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from tests.api.test_cli import BRANDS, ROOT, data_snapshot, run_cli

KIT = str(BRANDS / "acme-coffee.yaml")
SUITE = str(ROOT / "evals" / "suites" / "default.yaml")


def one_line(err: str) -> str:
    """The error line of stderr, which must be all there is on it."""
    assert err.startswith("brandloop: error: ") and err.count("\n") == 1, err
    return err


def prepared(capsys: pytest.CaptureFixture[str], data_dir: Path) -> dict[str, object]:
    """A registry with the Acme Coffee brand and the catalog in it; its snapshot."""
    code, _, err = run_cli(capsys, "brands", "add", KIT)
    assert code == 0, err
    run_cli(capsys, "models", "list")  # first use merges the shipped catalog into the registry
    return data_snapshot(data_dir)


# --------------------------------------------------------------------------- malformed files


def test_malformed_yaml_and_schema_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    not_yaml = tmp_path / "bad.yaml"
    not_yaml.write_text("assets: [hero\n")
    wrong_shape = tmp_path / "badpol2.yaml"
    wrong_shape.write_text("foo: 1\n")
    image = tmp_path / "x.png"
    image.write_bytes(b"not read: the policy is checked first")
    cases = [
        (
            ["score", str(image), "--brand", KIT, "--policy", str(wrong_shape)],
            f"scoring policy {wrong_shape}: palette: Field required (and 4 more)",
        ),
        (
            ["moderate", "a cup", "--policy", str(not_yaml)],
            f"moderation policy {not_yaml}:2:1: not valid YAML: expected ',' or ']'",
        ),
        (["campaign", "run", str(not_yaml)], f"campaign {not_yaml}:2:1: not valid YAML: "),
        (["campaign", "run", str(wrong_shape)], f"campaign {wrong_shape}: name: Field required"),
        (["eval", "validate", str(not_yaml)], f"suite {not_yaml}:2:1: not valid YAML: "),
        (["brands", "add", str(not_yaml)], f"brand kit {not_yaml}:2:1: not valid YAML: "),
    ]
    for argv, message in cases:
        code, out, err = run_cli(capsys, *argv)
        assert code == 2 and out == "", (argv, err)
        assert message in one_line(err), argv
        assert "while parsing" not in err or "from line 1, column 9" in err


def test_brand_kit_and_request_errors_say_the_rule_in_words(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    """An outside tester: a kit's bad name gave the name's regular expression, a directory or
    /dev/null given as a kit was 'does not exist', an empty kit 'got NoneType', --aspect 1:1000
    'is not of the form W:H', and --size with --aspect '(top level): ... aspect_ratio'."""
    named = tmp_path / "named.yaml"
    named.write_text('name: "Café Ünïcode"\npalette: []\n')
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    folder = tmp_path / "kits"
    folder.mkdir()
    cases = [
        (["brands", "add", str(named)], "name: 'Café Ünïcode' must be 1-80 ASCII letters"),
        (["brands", "add", str(empty)], f"{empty}: the file is empty"),
        (["generate", "a cup", "--brand", str(folder)], "is not a regular file (a directory)"),
        (["generate", "a cup", "--brand", "/dev/null"], "not a regular file (a character"),
        (
            ["generate", "a cup", "--brand", KIT, "--aspect", "1:1000"],
            "--aspect: aspect ratio '1:1000' is out of range: each part is 1..999",
        ),
        (
            ["generate", "a cup", "--brand", KIT, "--aspect", "16:9", "--size", "1024x1024"],
            "give --size or --aspect, not both",
        ),
    ]
    for argv, message in cases:
        code, out, err = run_cli(capsys, *argv)
        assert code == 2 and out == "", (argv, err)
        assert message in one_line(err), (argv, err)
        assert "^[" not in err and "NoneType" not in err and "top level" not in err, err


def test_a_malformed_brand_policy_is_bad_input_naming_the_file(
    capsys: pytest.CaptureFixture[str], settings: Settings, data_dir: Path, tmp_path: Path
) -> None:
    policy = data_dir / "policies" / "acme-coffee.yaml"
    policy.parent.mkdir(parents=True)
    policy.write_text("conflicts: [refuse\n")
    before = prepared(capsys, data_dir)
    image = tmp_path / "x.png"
    image.write_bytes(b"not read: the policy is checked first")
    out = str(tmp_path / "o")
    for argv in (
        ["generate", "a cup", "--brand", "Acme Coffee", "--size", "64x64", "--out", out],
        ["score", str(image), "--brand", "Acme Coffee"],
        ["moderate", "a cup", "--brand", "Acme Coffee"],
    ):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2, (argv, err)
        assert f"brand policy {policy}:2:1: not valid YAML: " in one_line(err)
    policy.write_text("conflicts: maybe\n")
    code, _, err = run_cli(capsys, "generate", "a cup", "--brand", "Acme Coffee", "--out", out)
    assert code == 2 and f"brand policy {policy}: conflicts: Input should be" in one_line(err)
    assert data_snapshot(data_dir) == before


def test_a_malformed_agent_policy_is_bad_input_before_the_run(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = prepared(capsys, data_dir)
    policy = tmp_path / "agent.yaml"
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    for text, message in (
        ("max_rounds: [3\n", f"agent policy (BRANDLOOP_AGENT_POLICY) {policy}:2:1: not valid"),
        ("surprise: 1\n", f"agent policy (BRANDLOOP_AGENT_POLICY) {policy}: surprise: Extra"),
    ):
        policy.write_text(text)
        code, _, err = run_cli(
            capsys, "generate", "a cup", "--brand", "Acme Coffee", "--out", str(tmp_path / "o")
        )
        assert code == 2 and message in one_line(err)  # no progress line before it either
    assert data_snapshot(data_dir) == before


def test_a_malformed_deployment_catalog_is_bad_input_naming_the_file(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = prepared(capsys, data_dir)
    catalog = tmp_path / "catalog.yaml"
    monkeypatch.setenv("BRANDLOOP_CATALOG_PATH", str(catalog))
    get_settings.cache_clear()
    run = ["generate", "a cup", "--brand", "Acme Coffee", "--out", str(tmp_path / "o")]
    for text, message in (
        (None, f"cannot read catalog {catalog}: No such file or directory"),
        ("models: [x\n", f"catalog {catalog}:2:1: not valid YAML: "),
        ("other: 1\n", f"catalog {catalog}: expected a mapping with a 'models' list"),
        ("models:\n  - id: x\n", f"catalog {catalog}: models.0.provider: Field required"),
    ):
        if text is not None:
            catalog.write_text(text)
        code, _, err = run_cli(capsys, *run)
        assert code == 2 and message in one_line(err)
    assert data_snapshot(data_dir) == before


SETTINGS = {
    "retention not JSON": (
        "BRANDLOOP_ARTIFACT_RETENTION_DAYS",
        "not json",
        ["gc", "--dry-run"],
        "BRANDLOOP_ARTIFACT_RETENTION_DAYS: not valid JSON: Expecting value",
    ),
    "retention infinite": (
        "BRANDLOOP_ARTIFACT_RETENTION_DAYS",
        '{"*": Infinity}',
        ["gc", "--dry-run"],
        "BRANDLOOP_ARTIFACT_RETENTION_DAYS.*: Input should be a finite number",
    ),
    "retention past a century": (
        "BRANDLOOP_ARTIFACT_RETENTION_DAYS",
        '{"*": 1e308}',
        ["gc", "--dry-run"],
        "more than 0 days and at most 36500",
    ),
    "retention for no tenant": (
        "BRANDLOOP_ARTIFACT_RETENTION_DAYS",
        '{"acmé": 3}',
        ["gc", "--dry-run"],
        "retention ages are per tenant id",
    ),
    "limits not JSON": (
        "BRANDLOOP_PROVIDER_LIMITS",
        "{bad",
        ["runs", "list"],
        "BRANDLOOP_PROVIDER_LIMITS: not valid JSON: Expecting property name",
    ),
    "timeout not a number": (
        "BRANDLOOP_PROVIDER_TIMEOUT_S",
        "abc",
        ["runs", "list"],
        "BRANDLOOP_PROVIDER_TIMEOUT_S: Input should be a valid number",
    ),
    "timeout infinite": (
        "BRANDLOOP_PROVIDER_TIMEOUT_S",
        "inf",
        ["runs", "list"],
        "BRANDLOOP_PROVIDER_TIMEOUT_S: Input should be a finite number",
    ),
    "tenant not UTF-8": (
        "BRANDLOOP_TENANT",
        "acme\udcff",
        ["runs", "list"],
        "BRANDLOOP_TENANT: not valid UTF-8 (byte 0xff at character 5)",
    ),
}


@pytest.mark.databases("sqlite")
@pytest.mark.parametrize("case", sorted(SETTINGS))
def test_a_malformed_setting_is_bad_input_naming_the_variable(
    case: str,
    capsys: pytest.CaptureFixture[str],
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SQLite only: settings are read before any database is opened."""
    variable, value, argv, message = SETTINGS[case]
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == "" and message in one_line(err)


# --------------------------------------------------------------------------- numbers


NUMBERS = {
    "nan campaign budget": (
        ["campaign", "budget", "nan", "--campaign-id", "x"],
        "Invalid value for 'amount': nan is not a finite number",
    ),
    "infinite tenant budget": (
        ["campaign", "budget", "inf", "--tenant", "--json"],
        "Invalid value for 'amount': inf is not a finite number",
    ),
    "huge tenant budget": (
        ["campaign", "budget", "1e308", "--tenant"],
        "a budget must be at most $1,000,000,000",
    ),
    "infinite age": (
        ["gc", "--dry-run", "--older-than", "inf"],
        "Invalid value for '--older-than': inf is not a finite number",
    ),
    "huge age": (
        ["gc", "--dry-run", "--older-than", "1e308"],
        "--older-than must be more than 0 days and at most 36500",
    ),
    "nan run budget": (
        ["generate", "a cup", "--brand", KIT, "--budget", "nan"],
        "Invalid value for '--budget': nan is not a finite number",
    ),
    "huge run budget": (
        ["generate", "a cup", "--brand", KIT, "--budget", "1e308"],
        "--budget must be greater than zero and at most 10,000 dollars",
    ),
    "nan charge": (
        ["spend", "reconcile", "res_x", "--charged", "nan"],
        "Invalid value for '--charged': nan is not a finite number",
    ),
    "huge charge": (
        ["spend", "reconcile", "res_x", "--charged", "1e308"],
        "a charge must be at most $1,000,000,000",
    ),
    "huge template version": (
        ["templates", "diff", "brand-hero", "1", "99999999999999999999999"],
        "brand-hero@99999999999999999999999 does not exist",
    ),
    "huge template version in a run": (
        ["generate", "a cup", "--brand", KIT, "--template", "brand-hero@99999999999999999999"],
        "brand-hero@99999999999999999999 does not exist",
    ),
}


@pytest.mark.parametrize("case", sorted(NUMBERS))
def test_non_finite_and_huge_numbers_are_bad_input(
    case: str, capsys: pytest.CaptureFixture[str], settings: Settings, data_dir: Path
) -> None:
    before = prepared(capsys, data_dir)
    argv, message = NUMBERS[case]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == "", err
    assert message in one_line(err)
    assert data_snapshot(data_dir) == before


def test_a_refused_budget_keeps_the_one_set_before(
    capsys: pytest.CaptureFixture[str], settings: Settings, data_dir: Path
) -> None:
    code, out, _ = run_cli(capsys, "campaign", "budget", "5", "--campaign-id", "x", "--json")
    assert code == 0 and json.loads(out)["limit_usd"] == 5.0
    for amount in ("nan", "inf", "-inf", "1e308"):
        code, out, err = run_cli(capsys, "campaign", "budget", amount, "--campaign-id", "x")
        assert code == 2 and out == "" and one_line(err)
    database = Database.from_settings(get_settings())
    try:
        with database.session() as session:
            limits = session.execute(sa.text("SELECT scope_id, limit_usd FROM budgets")).all()
    finally:
        database.dispose()
    assert [(row[0], float(row[1])) for row in limits] == [("x", 5.0)]


def test_a_request_out_of_range_names_the_flag_and_registers_nothing(
    capsys: pytest.CaptureFixture[str], settings: Settings, data_dir: Path
) -> None:
    """``--n 0`` says ``--n``, not the request's field name (``count``), and the brand kit the
    request named is not registered by a request that was refused."""
    before = data_snapshot(data_dir)
    cases = [
        (["--n", "0"], "--n: Input should be greater than or equal to 1"),
        (["--n", "17"], "--n: Input should be less than or equal to 16"),
        (["--seed", "-1"], "--seed: Input should be greater than or equal to 0"),
        (["--size", "9x9"], "--size: size '9x9' is impossible"),
        (["--aspect", "0:1"], "--aspect: "),
        (["--campaign", "c" * 121], "--campaign: "),
    ]
    for extra, message in cases:
        code, out, err = run_cli(capsys, "generate", "a cup", "--brand", KIT, *extra)
        assert code == 2 and out == "", (extra, err)
        assert message in one_line(err), extra
    assert data_snapshot(data_dir) == before


# --------------------------------------------------------------------------- text


TEXT = {
    "brief": (["generate", "a cup \udcff", "--brand", KIT], "'brief'"),
    "brand": (["generate", "a cup", "--brand", "Acme\udcff"], "'--brand'"),
    "memory note": (["memory", "add", "--brand", "Acme Coffee", "note \udcff"], "'text'"),
    "run id": (["runs", "show", "run_\udcff"], "'ref'"),
    "moderated text": (["moderate", "note \udcff"], "'text'"),
    "eval target": (["eval", "run", SUITE, "--target", "x\udcff"], "'--target'"),
}


@pytest.mark.parametrize("case", sorted(TEXT))
def test_text_that_is_not_utf8_is_bad_input(
    case: str, capsys: pytest.CaptureFixture[str], settings: Settings, data_dir: Path
) -> None:
    """A non-UTF-8 byte in an argument reaches Python as a surrogate escape (here ``\\udcff``
    for the byte 0xff, as ``sys.argv`` holds it)."""
    before = prepared(capsys, data_dir)
    argv, name = TEXT[case]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == "", err
    assert f"Invalid value for {name}: not valid UTF-8 (byte 0xff at character" in one_line(err)
    assert data_snapshot(data_dir) == before


@pytest.mark.databases("sqlite")
def test_standard_input_that_is_not_utf8_is_bad_input(
    capsys: pytest.CaptureFixture[str], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite only: moderating text reads no registry."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a cup \xff\n")))
    code, out, err = run_cli(capsys, "moderate", "-")
    assert code == 2 and out == ""
    assert "standard input is not valid UTF-8 (byte 0xff at offset 6)" in one_line(err)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a steaming cup\r\n")))
    code, out, err = run_cli(capsys, "moderate", "-", "--json")
    assert code == 0 and json.loads(out)["allowed"], err


def test_a_path_need_not_be_utf8(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    """Paths are not text: a file name of other bytes is a file like any other."""
    kit = tmp_path / "acme-\udcff.yaml"
    shutil.copyfile(KIT, kit)
    code, out, err = run_cli(capsys, "brands", "add", str(kit))
    assert code == 0 and "Acme Coffee" in out, err


# --------------------------------------------------------------------------- output paths


def test_an_unusable_output_path_is_refused_before_anything_is_spent(
    capsys: pytest.CaptureFixture[str], settings: Settings, data_dir: Path, tmp_path: Path
) -> None:
    before = prepared(capsys, data_dir)
    afile = tmp_path / "afile"
    afile.write_text("mine")
    run = ["generate", "a cup", "--brand", "Acme Coffee", "--size", "64x64", "--seed", "1"]
    cases = [
        ([*run, "--out", str(afile)], f"--out {afile} is a file, not a folder"),
        ([*run, "--out", str(afile / "sub")], f"--out {afile / 'sub'}: {afile} is a file"),
        (
            ["eval", "run", SUITE, "--report", str(afile / "r.html")],
            f"--report {afile / 'r.html'}: {afile} is a file, not a folder",
        ),
        (["eval", "run", SUITE, "--json", str(tmp_path)], f"--json {tmp_path} is a folder"),
        # a suite that is a folder or a device says so, not "does not exist" (an outside tester)
        (["eval", "run", str(tmp_path)], f"suite {tmp_path} is not a regular file (a directory)"),
        (["eval", "run", "/dev/null"], "suite /dev/null is not a regular file (a device"),
        (["eval", "run", str(tmp_path / "none.yaml")], f"suite {tmp_path / 'none.yaml'} does not"),
        (["eval", "run", SUITE, "--run-dir", str(afile)], f"--run-dir {afile} is a file"),
        (["runs", "reproduce", "run_x", "--out", str(afile)], f"--out {afile} is a file"),
        (["templates", "export", str(afile)], f"DIRECTORY {afile} is a file"),
    ]
    for argv, message in cases:
        code, out, err = run_cli(capsys, *argv)
        assert code == 2 and out == "", (argv, err)
        assert message in one_line(err), argv
    assert afile.read_text() == "mine"
    assert data_snapshot(data_dir) == before  # no run, no reservation, no bill


def test_an_output_path_the_file_system_refuses_is_found_by_trying_before_anything_runs(
    capsys: pytest.CaptureFixture[str], settings: Settings, data_dir: Path, tmp_path: Path
) -> None:
    """Permission bits are not the test (they pass for root): a folder /proc cannot hold and
    a name too long for the file system are refused, with exit 2 and one line, by every
    command that writes a folder or a file, before a run is stored or paid or a case runs;
    the check leaves nothing behind, and a path that can be written still works."""
    before = prepared(capsys, data_dir)
    room = tmp_path / "outputs"
    room.mkdir()
    long = room / ("a" * 300)
    run = ["generate", "a cup", "--brand", "Acme Coffee", "--size", "64x64", "--seed", "2"]
    proc = Path("/proc/x")
    cases = [
        ([*run, "--out", str(proc / "o")], f"--out {proc / 'o'}: {proc} cannot be made a folder"),
        ([*run, "--out", str(long)], f"--out {long} is too long a name for this file system"),
        ([*run, "--out", str(long / "o")], f"--out {long / 'o'}: {long} is too long a name"),
        (["runs", "reproduce", "run_x", "--out", str(proc)], f"--out {proc} cannot be made"),
        (["runs", "reproduce", "run_x", "--out", str(long)], f"--out {long} is too long"),
        (["templates", "export", str(proc)], f"DIRECTORY {proc} cannot be made a folder"),
        (["templates", "export", str(long)], f"DIRECTORY {long} is too long a name"),
        (["eval", "run", SUITE, "--run-dir", str(proc)], f"--run-dir {proc} cannot be made"),
        (["eval", "run", SUITE, "--run-dir", str(long)], f"--run-dir {long} is too long"),
    ]
    for option in ("--report", "--json", "--junit"):
        cases += [
            (["eval", "run", SUITE, option, str(proc / "r")], f"{option} {proc / 'r'}: {proc}"),
            (["eval", "run", SUITE, option, f"{long}.html"], f"{option} {long}.html is too long"),
        ]
    for argv, message in cases:
        code, out, err = run_cli(capsys, *argv)
        assert code == 2 and out == "", (argv, err)
        assert message in one_line(err), (argv, err)
    assert not proc.exists() and list(room.iterdir()) == []
    assert data_snapshot(data_dir) == before  # no run, no reservation, no bill
    fresh = room / "new" / "folder"
    code, out, err = run_cli(capsys, "templates", "export", str(fresh))
    assert code == 0 and sorted(p.name for p in fresh.iterdir()) == ["brand-hero.yaml"], err


def test_a_run_that_accepts_nothing_writes_and_claims_no_files(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    out_dir = tmp_path / "o"
    argv = ["generate", "a cup", "--brand", KIT, "--size", "64x64", "--budget", "0.001"]
    code, out, _ = run_cli(capsys, *argv, "--out", str(out_dir))
    assert code == 4 and "Receipt" not in out and str(out_dir) not in out
    assert not out_dir.exists()
    code, out, _ = run_cli(capsys, *argv, "--out", str(out_dir), "--json")
    assert code == 4 and json.loads(out)["receipt_path"] is None
    assert not out_dir.exists()


def test_an_unconfigured_provider_names_the_flag(
    capsys: pytest.CaptureFixture[str], settings: Settings, data_dir: Path, tmp_path: Path
) -> None:
    """The CLI's message names its flag, as the API's names its field (test_conflicts_and_
    providers.py)."""
    before = prepared(capsys, data_dir)
    code, _, err = run_cli(
        capsys,
        "generate",
        "a cup",
        "--brand",
        "Acme Coffee",
        "--providers",
        "stability",
        "--out",
        str(tmp_path / "o"),
    )
    assert code == 2
    assert "--providers names provider(s) stability that are not configured" in one_line(err)
    assert data_snapshot(data_dir) == before


def test_gc_prints_an_age_in_plain_digits() -> None:
    """`gc --older-than 0.00001` printed 'more than 1e-05 days' (an outside tester)."""
    assert [_plain(d) for d in (0.00001, 30.0, 0.5, 36500.0)] == ["0.00001", "30", "0.5", "36500"]
