"""``brandloop spend unknown|reconcile``: calls of unknown outcome, listed and settled."""

from __future__ import annotations

import json

import pytest

from brandloop.api.cli import main
from brandloop.registry import crud, spend
from brandloop.registry.db import Database


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


def _unknown_call(db: Database, key: str, amount: float) -> str:
    with db.session() as session:
        spend.lock_tenant(session, "default")
        row = spend.reserve_call(
            session,
            tenant="default",
            run_id="run_gone",
            campaign_id=None,
            call_key=key,
            amount_usd=amount,
            provider="openai",
            model="openai/gpt-image-1",
            attempt_ids=[],
        )
        spend.settle(session, call_key=key, billing="unknown", charged_usd=0.0)
        return row.id


def test_unknown_calls_are_listed_and_reconciled(
    capsys: pytest.CaptureFixture[str], db: Database
) -> None:
    lost = _unknown_call(db, "bl-lost", 0.042)
    code, out, _ = run_cli(capsys, "spend", "unknown", "--json")
    assert code == 0
    (listed,) = json.loads(out)
    assert listed["id"] == lost and listed["reserved_usd"] == 0.042
    code, out, _ = run_cli(
        capsys, "spend", "reconcile", lost, "--charged", "0.04", "--as", "ops", "--json"
    )
    assert code == 0 and json.loads(out) == {"id": lost, "state": "settled", "charged_usd": 0.04}
    with db.session() as session:
        assert spend.committed(session, tenant="default") == pytest.approx(0.04)
        (entry,) = [a for a in crud.list_audit(session, tenant="default") if a.subject_id == lost]
        assert entry.actor == "ops" and entry.action == "spend.reconciled"
    assert json.loads(run_cli(capsys, "spend", "unknown", "--json")[1]) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["spend", "reconcile", "res_nope", "--charged", "0"], "no call reservation"),
        (["spend", "reconcile", "LOST", "--charged", "-1"], "cannot be negative"),
        (["spend", "reconcile", "LOST"], "--charged"),
        # a typo's shape (40 for 0.04): past 10x the reservation, final once settled
        (["spend", "reconcile", "LOST", "--charged", "40"], "more than 10 times"),
        (["spend", "reconcile", "LOST", "--charged", "1e9"], "more than 10 times"),
        (["spend", "reconcile", "LOST", "--charged", "1e12"], "at most"),
        # the audit entry's actor is a user's name: never brandloop's own, blank or two lines
        (["spend", "reconcile", "LOST", "--charged", "0", "--as", "system"], "reserved"),
        (["spend", "reconcile", "LOST", "--charged", "0", "--as", "SYSTEM"], "reserved"),
        (["spend", "reconcile", "LOST", "--charged", "0", "--as", ""], "not a valid user"),
        (["spend", "reconcile", "LOST", "--charged", "0", "--as", "evil\nsystem"], "not a valid"),
        (["spend", "reconcile", "LOST", "--charged", "0", "--as", "ops.ü"], "not a valid user"),
    ],
)
def test_reconcile_bad_input_is_one_line_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], db: Database, argv: list[str], message: str
) -> None:
    lost = _unknown_call(db, "bl-lost", 0.042)
    code, _, err = run_cli(capsys, *[lost if a == "LOST" else a for a in argv])
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    with db.session() as session:
        assert spend.committed(session, tenant="default") == pytest.approx(0.042)
        assert not [a for a in crud.list_audit(session, tenant="default") if a.subject_id == lost]


def test_a_call_a_run_cancelled_before_it_was_marked_unknown_is_listed_and_reconciled(
    capsys: pytest.CaptureFixture[str], db: Database
) -> None:
    """A run cancelled by an earlier release kept the call its dead process left in flight
    ``held``: it is listed, and reconciling it moves the run's cost."""
    with db.session() as session:
        crud.create_run(
            session,
            run_id="run_left",
            tenant="default",
            brand_id=None,
            brand_name="Acme Coffee",
            brief="a cup",
            request={},
        )
        spend.lock_tenant(session, "default")
        held = spend.reserve_call(
            session,
            tenant="default",
            run_id="run_left",
            campaign_id=None,
            call_key="bl-left",
            amount_usd=0.042,
            provider="openai",
            model="openai/gpt-image-1",
            attempt_ids=["att_never_recorded"],
        ).id
        crud.cancel_run(session, run_id="run_left", reason="cancelled while running")
    (listed,) = json.loads(run_cli(capsys, "spend", "unknown", "--json")[1])
    assert (listed["id"], listed["run_id"]) == (held, "run_left")
    code, _, err = run_cli(capsys, "spend", "reconcile", held, "--charged", "0.04", "--json")
    assert code == 0, err
    with db.session() as session:
        run = crud.get_run(session, tenant="default", run_id="run_left")
        assert run is not None and run.cost_usd == pytest.approx(0.04)
    assert json.loads(run_cli(capsys, "spend", "unknown", "--json")[1]) == []


def test_a_charge_past_ten_times_the_reservation_is_taken_when_asked(
    capsys: pytest.CaptureFixture[str], db: Database
) -> None:
    lost = _unknown_call(db, "bl-lost", 0.042)
    code, out, _ = run_cli(
        capsys, "spend", "reconcile", lost, "--charged", "0.42", "--json"
    )  # exactly 10x: an invoice can say so
    assert code == 0 and json.loads(out)["charged_usd"] == 0.42
    other = _unknown_call(db, "bl-other", 0.042)
    code, out, _ = run_cli(
        capsys, "spend", "reconcile", other, "--charged", "5", "--over-reservation", "--json"
    )
    assert code == 0 and json.loads(out)["charged_usd"] == 5.0
    with db.session() as session:
        assert spend.committed(session, tenant="default") == pytest.approx(5.42)
