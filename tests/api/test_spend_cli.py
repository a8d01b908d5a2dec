"""``brandloop spend unknown|reconcile``: calls of unknown outcome, listed and settled."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from brandloop.api.cli import main
from brandloop.errors import BadInputError
from brandloop.registry import crud, spend
from brandloop.registry.db import Database
from brandloop.registry.models_money import SpendReservationRow


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


def _reconcile(db: Database, reservation: str, charged: float, actor: str) -> str:
    """One reconcile in its own transaction: "" when it settled the call, else why not."""
    try:
        with db.session() as session:
            spend.reconcile(
                session,
                tenant="default",
                reservation_id=reservation,
                charged_usd=charged,
                actor=actor,
            )
    except BadInputError as exc:
        return str(exc)
    return ""


@pytest.mark.parametrize("attempt", range(3))
def test_two_reconciles_of_one_call_at_once_settle_it_once(db: Database, attempt: int) -> None:
    """Two operators reconcile the same unknown call at the same moment, to $0.04 and to $0:
    one settles it, the other is refused with the call's state, and one audit entry says who."""
    lost = _unknown_call(db, f"bl-raced-{attempt}", 0.042)
    start = threading.Barrier(2)

    def reconcile(charged_and_actor: tuple[float, str]) -> str:
        start.wait()
        return _reconcile(db, lost, *charged_and_actor)

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(reconcile, [(0.04, "a"), (0.0, "b")]))
    assert sorted(answers)[0] == "" and "not unknown" in sorted(answers)[1], answers
    won = "a" if answers[0] == "" else "b"
    with db.session() as session:
        row = session.get(SpendReservationRow, lost)
        assert row is not None
        expected = ("settled", 0.04) if won == "a" else ("released", 0.0)
        assert (row.state, row.charged_usd) == expected
        entries = [a for a in crud.list_audit(session, tenant="default") if a.subject_id == lost]
        assert [e.actor for e in entries] == [won]


def test_a_second_reconcile_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], db: Database
) -> None:
    lost = _unknown_call(db, "bl-twice", 0.042)
    assert run_cli(capsys, "spend", "reconcile", lost, "--charged", "0.04", "--as", "a")[0] == 0
    code, _, err = run_cli(capsys, "spend", "reconcile", lost, "--charged", "0", "--as", "b")
    assert code == 2 and "is settled, not unknown" in err and len(err.strip().splitlines()) == 1
    with db.session() as session:
        assert spend.committed(session, tenant="default") == pytest.approx(0.04)


def _held_call_of_a_running_run(db: Database) -> str:
    with db.session() as session:
        crud.create_run(
            session,
            run_id="run_live",
            tenant="default",
            brand_id=None,
            brand_name="Acme Coffee",
            brief="a cup",
            request={},
        )
        spend.lock_tenant(session, "default")
        return spend.reserve_call(
            session,
            tenant="default",
            run_id="run_live",
            campaign_id=None,
            call_key="bl-in-flight",
            amount_usd=0.042,
            provider="openai",
            model="openai/gpt-image-1",
            attempt_ids=[],
        ).id


def test_a_call_in_flight_of_a_running_run_is_not_reconciled(
    capsys: pytest.CaptureFixture[str], db: Database
) -> None:
    """The run's call is still held (in flight): reconciling it is refused, and the run's own
    settlement is what the ledger keeps."""
    held = _held_call_of_a_running_run(db)
    assert "has not finished" in _reconcile(db, held, 0.0, "ops")
    code, _, err = run_cli(capsys, "spend", "reconcile", held, "--charged", "0", "--as", "ops")
    assert code == 2 and "has not finished" in err and len(err.strip().splitlines()) == 1
    with db.session() as session:
        spend.settle(session, call_key="bl-in-flight", billing="billed", charged_usd=0.04)
    with db.session() as session:
        row = session.get(SpendReservationRow, held)
        assert row is not None and (row.state, row.charged_usd) == ("settled", 0.04)
        assert not [a for a in crud.list_audit(session, tenant="default") if a.subject_id == held]


@pytest.mark.parametrize(("charged", "state"), [(0.0, "released"), (0.03, "settled")])
def test_a_run_coming_back_late_does_not_overwrite_a_reconciled_call(
    db: Database, charged: float, state: str
) -> None:
    """The first final settlement wins: an operator reconciled the call, then the process that
    made it (its lease lapsed, not dead) comes back with the provider's answer."""
    lost = _unknown_call(db, "bl-late", 0.042)
    assert _reconcile(db, lost, charged, "ops") == ""
    with db.session() as session:
        spend.settle(session, call_key="bl-late", billing="billed", charged_usd=0.04)
    with db.session() as session:
        row = session.get(SpendReservationRow, lost)
        assert row is not None and (row.state, row.charged_usd) == (state, charged)
        assert spend.committed(session, tenant="default") == pytest.approx(charged)


@pytest.mark.parametrize(
    ("charged", "expected"),
    [
        ("0", ("released", 0.0, "not_billed")),
        ("0.0000001", ("released", 0.0, "not_billed")),  # below the ledger's micro-dollar
        ("0.0000004", ("released", 0.0, "not_billed")),
        ("0.000001", ("settled", 0.000001, "billed")),
        ("0.0400004", ("settled", 0.04, "billed")),
    ],
)
def test_a_charge_is_rounded_to_the_micro_dollar_before_it_decides_billed(
    capsys: pytest.CaptureFixture[str], db: Database, charged: str, expected: tuple[object, ...]
) -> None:
    lost = _unknown_call(db, "bl-tiny", 0.042)
    code, out, err = run_cli(capsys, "spend", "reconcile", lost, "--charged", charged, "--json")
    assert code == 0, err
    with db.session() as session:
        row = session.get(SpendReservationRow, lost)
        assert row is not None and (row.state, row.charged_usd, row.billing) == expected
    assert json.loads(out) == {"id": lost, "state": expected[0], "charged_usd": expected[1]}
