"""``brandloop runs reproduce`` pays as a generation pays: within the tenant's and the run's
campaign's budgets, refused up front when it cannot pay, and counted once it has paid."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from brandloop.agent.budgets import OutsideRunPayer
from brandloop.agent.runner import catalog_models, default_providers
from brandloop.registry.db import Database
from brandloop.reproduce import Reproduction, reproduce_run
from brandloop.settings import Settings
from brandloop.tools.providers.batching import receipt_request
from tests.api.test_cli import BRANDS, run_cli


def _generate(capsys: pytest.CaptureFixture[str], tmp_path: Path, seed: int, *extra: str) -> dict:
    code, out, err = run_cli(
        capsys, "generate", "a steaming cup", "--brand", str(BRANDS / "acme-coffee.yaml"),
        "--seed", str(seed), "--n", "3", "--size", "1200x628", "--no-memory",
        "--out", str(tmp_path / f"o{seed}"), "--json", *extra,
    )  # fmt: skip
    assert code == 0, err
    doc: dict = json.loads(out)
    assert doc["images"] and doc["cost_usd"] > 0
    return doc


def _spent(capsys: pytest.CaptureFixture[str], limit: float, *scope: str) -> float:
    code, out, err = run_cli(capsys, "campaign", "budget", str(limit), *scope, "--json")
    assert code == 0, err
    return float(json.loads(out)["spent_usd"])


def _ledger_rows(settings: Settings) -> int:
    db = Database.from_settings(settings)
    try:
        with db.engine.connect() as conn:
            return int(
                conn.execute(sa.text("SELECT count(*) FROM spend_reservations")).scalar_one()
            )
    finally:
        db.dispose()


def test_reproduce_is_refused_when_the_tenant_budget_cannot_pay_and_counted_when_it_can(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, seed: int
) -> None:
    run = _generate(capsys, tmp_path, seed)
    spent = _spent(capsys, 1000, "--tenant")
    assert spent == pytest.approx(run["cost_usd"])
    _spent(capsys, round(spent + 0.005, 6), "--tenant")  # half a cent left: not one image
    rows = _ledger_rows(settings)

    code, out, err = run_cli(capsys, "runs", "reproduce", run["run_id"])
    assert code == 4 and out == "", out
    assert err.count("\n") == 1 and "remaining tenant default budget $0.005" in err, err
    assert "nothing was spent" in err
    assert _ledger_rows(settings) == rows
    assert _spent(capsys, 1000, "--tenant") == pytest.approx(spent)

    code, out, err = run_cli(capsys, "runs", "reproduce", run["run_id"], "--json")
    assert code == 0, err
    reproduction = json.loads(out)
    assert reproduction["cost_usd"] > 0
    assert _spent(capsys, 1000, "--tenant") == pytest.approx(spent + reproduction["cost_usd"])


def test_reproducing_a_campaigns_run_pays_from_the_campaigns_budget(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, seed: int
) -> None:
    run = _generate(capsys, tmp_path, seed, "--campaign", "fall")
    spent = _spent(capsys, round(run["cost_usd"] + 0.005, 6), "--campaign-id", "fall")
    code, _, err = run_cli(capsys, "runs", "reproduce", run["run_id"])
    assert code == 4 and "remaining campaign fall budget $0.005" in err, err
    _spent(capsys, 1000, "--campaign-id", "fall")
    code, out, err = run_cli(capsys, "runs", "reproduce", run["run_id"], "--json")
    assert code == 0, err
    paid = json.loads(out)["cost_usd"]
    assert _spent(capsys, 1000, "--campaign-id", "fall") == pytest.approx(spent + paid)


def test_reproductions_at_once_never_spend_past_the_tenant_budget(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, seed: int
) -> None:
    run = _generate(capsys, tmp_path, seed)
    code, out, err = run_cli(capsys, "runs", "reproduce", run["run_id"], "--json")
    assert code == 0, err
    one = json.loads(out)["cost_usd"]
    spent = _spent(capsys, 1000, "--tenant")
    limit = round(spent + 1.5 * one, 6)  # room for one reproduction and a half, not four
    _spent(capsys, limit, "--tenant")
    db = Database.from_settings(settings)

    def reproduce(_: int) -> Reproduction | str:
        async def go() -> Reproduction:
            return await reproduce_run(
                settings,
                db,
                tenant="default",
                run_id=run["run_id"],
                providers=default_providers(settings),
                models=catalog_models(db, settings),
                payer=OutsideRunPayer(db, tenant="default"),
                request_for=receipt_request,
            )

        try:
            return asyncio.run(go())
        except Exception as exc:  # the budget refused it up front
            return f"{type(exc).__name__}: {exc}"

    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(reproduce, range(4)))
    finally:
        db.dispose()
    paid = sum(r.cost_usd for r in results if isinstance(r, Reproduction))
    assert paid > 0
    assert spent + paid <= limit + 1e-9
    assert _spent(capsys, limit, "--tenant") == pytest.approx(spent + paid)
    for result in results:
        if isinstance(result, str):
            assert result.startswith("BudgetExhaustedError: remaining tenant default budget")
        else:
            for image in result.images:
                assert image.verdict != "failed" or "not sent: remaining" in (image.error or "")
