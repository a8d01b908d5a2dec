"""The template commands take numbers and names as the HTTP API does: versions and weights in
ASCII digits without spaces (or a leading zero in a version), names within their length, a
refusal saying the limit; and an approver's own version is one for another approver."""

from __future__ import annotations

from pathlib import Path

import pytest

from brandloop.settings import Settings
from tests.api.test_cli import BRANDS, data_snapshot, run_cli

ROOT = Path(__file__).resolve().parents[2]
V1 = str(ROOT / "examples" / "templates" / "seasonal-banner.yaml")


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    return out


@pytest.fixture
def approved(capsys: pytest.CaptureFixture[str], settings: Settings) -> Settings:
    """seasonal-banner@1, approved (ana wrote it, lee approved it)."""
    ok(capsys, "templates", "create", "seasonal-banner", "--file", V1, "--as", "ana")
    ok(capsys, "templates", "submit", "seasonal-banner", "1", "--as", "ana")
    ok(capsys, "templates", "approve", "seasonal-banner", "1", "--as", "lee")
    return settings


ARABIC_ONE, FULL_WIDTH_ONE = "\u0661", "\uff11"
KIT = str(BRANDS / "acme-coffee.yaml")

BAD = [
    (["templates", "label", "seasonal-banner", "staging", ARABIC_ONE, "--as", "ana"], "ASCII"),
    (
        ["templates", "label", "seasonal-banner", "staging", f"1={FULL_WIDTH_ONE}", "--as", "ana"],
        "ASCII",
    ),
    (["templates", "label", "seasonal-banner", "staging", " 1", "--as", "ana"], "ASCII"),
    (["templates", "label", "seasonal-banner", "production", "01", "--as", "lee"], "leading zero"),
    (["templates", "label", "seasonal-banner", "staging", "1=1_0", "--as", "ana"], "ASCII"),
    (["templates", "approve", "seasonal-banner", ARABIC_ONE, "--as", "lee"], "ASCII"),
    (["templates", "reject", "seasonal-banner", " 1", "--as", "lee", "--note", "no"], "ASCII"),
    (
        ["templates", "comment", "seasonal-banner", FULL_WIDTH_ONE, "--as", "lee", "-m", "x"],
        "ASCII",
    ),
    (["templates", "submit", "seasonal-banner", "01", "--as", "ana"], "leading zero"),
    (["templates", "diff", "seasonal-banner", "1", f"{ARABIC_ONE}"], "ASCII"),
    (["templates", "show", "seasonal-banner@01"], "is not name, name@VERSION"),
    (["generate", "x", "--brand", KIT, "--seed", " 3"], "ASCII"),
    (["generate", "x", "--brand", KIT, "--n", FULL_WIDTH_ONE], "ASCII"),
    (["generate", "x", "--brand", KIT, "--budget", f"0.{ARABIC_ONE}"], "ASCII"),
    (["generate", "x", "--brand", KIT, "--budget", "1_0"], "ASCII"),
    # names past their length say the limit (not that they hold a wrong character)
    (["templates", "create", "y" * 128, "--file", V1, "--as", "ana"], "at most 120"),
    (["templates", "submit", "seasonal-banner", "1", "--as", "a" * 121], "at most 120"),
    (["templates", "label", "seasonal-banner", "l" * 65, "1", "--as", "lee"], "at most 64"),
]


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[f"bad-{i}" for i in range(len(BAD))])
def test_a_number_or_name_the_api_refuses_is_refused_exit_2_changing_nothing(
    capsys: pytest.CaptureFixture[str],
    approved: Settings,
    argv: list[str],
    message: str,
) -> None:
    before = data_snapshot(approved.data_dir)
    code, out, err = run_cli(capsys, *argv)
    assert code == 2, (out, err)
    assert err.startswith("brandloop: error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert data_snapshot(approved.data_dir) == before


def test_numbers_in_ascii_digits_work_and_the_same_with_a_space_does_not(
    capsys: pytest.CaptureFixture[str], approved: Settings
) -> None:
    ok(capsys, "templates", "label", "seasonal-banner", "staging", "1=0.5", "--as", "ana")
    ok(capsys, "templates", "label", "seasonal-banner", "production", "1", "--as", "lee")
    ok(capsys, "templates", "comment", "seasonal-banner", "1", "--as", "lee", "-m", "fine")
    assert "seasonal-banner@1" in ok(capsys, "templates", "show", "seasonal-banner@1")
    code, _, err = run_cli(
        capsys, "templates", "label", "seasonal-banner", "staging", "1=0.5 ", "--as", "ana"
    )
    assert code == 2 and "ASCII" in err, err


@pytest.mark.parametrize("verb", ["approve", "reject"])
def test_an_approver_who_wrote_a_version_is_told_to_ask_another_approver(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, verb: str
) -> None:
    template = tmp_path / "t.yaml"
    template.write_text("body: '{{ brief }}'\n", encoding="utf-8")
    ok(capsys, "templates", "create", "lee-t", "--file", str(template), "--as", "lee")
    ok(capsys, "templates", "submit", "lee-t", "1", "--as", "lee")
    code, _, err = run_cli(capsys, "templates", verb, "lee-t", "1", "--as", "lee", "--note", "n")
    assert code == 2, err
    assert f"lee wrote lee-t@1 and may not {verb} it; ask another approver" in err, err
