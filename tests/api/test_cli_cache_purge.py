"""``brandloop cache purge --model M``: M is a catalog model or one the cache holds entries of
(a model since dropped from the catalog can still be purged); anything else is bad input, one
line and exit 2, with nothing deleted (an outside tester's report: a typo exited 0 having
purged nothing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brandloop.api.cli import main
from brandloop.registry.db import Database
from brandloop.tools import cache as generation_cache

ROOT = Path(__file__).resolve().parents[2]
KIT = str(ROOT / "examples" / "brands" / "acme-coffee.yaml")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


def _entries(db: Database) -> dict[str, int]:
    with db.session() as session:
        stats = generation_cache.stats(session, tenant="default")
    return {model: int(v["entries"]) for model, v in stats.by_model.items()}


def test_purging_a_model_nobody_knows_is_bad_input_and_deletes_nothing(
    capsys: pytest.CaptureFixture[str], db: Database, tmp_path: Path
) -> None:
    code, out, err = run_cli(
        capsys, "generate", "a cup on a table", "--brand", KIT, "--seed", "3",
        "--out", str(tmp_path / "out"), "--json",
    )  # fmt: skip
    assert code == 0, err
    before = _entries(db)
    assert before, "the run cached what it made"
    model = sorted(before)[0]
    for typo in (model.replace("/", "/x"), model.upper(), "nosuch/model"):
        code, out, err = run_cli(capsys, "cache", "purge", "--model", typo)
        assert code == 2 and len(err.strip().splitlines()) == 1, (code, out, err)
        assert "neither a catalog model nor one the cache holds" in err and model in err
        assert _entries(db) == before
    code, out, _ = run_cli(capsys, "cache", "purge", "--model", model, "--json")
    assert code == 0 and json.loads(out) == {"deleted": before[model], "model": model}
    assert _entries(db) == {m: n for m, n in before.items() if m != model}
    # a catalog model with no entries is no typo: 0 deleted, exit 0
    code, out, _ = run_cli(capsys, "cache", "purge", "--model", model, "--json")
    assert code == 0 and json.loads(out)["deleted"] == 0
