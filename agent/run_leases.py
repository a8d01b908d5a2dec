"""Which process drives a run now: a lease, so a run a live process still runs is not driven
a second time, and a run whose process died is resumed as before.

Starting a run (``run_generation``) or driving it on (``resume_run``: the CLI's ``runs
resume``, an API job, a review verdict) takes the run's lease (``run_leases``) for
``BRANDLOOP_JOB_LEASE_SECONDS``, renews it every third of that on a thread of its own, and
gives it up when it stops driving the run (finished, waiting for review, failed, interrupted).
While the lease is held by a live process, taking it is a :class:`RunBusyError` naming that
process (pid and host): the CLI's exit 2, the API's 409 (a job worker granted the run's job
takes it over: the job's lease already shuts out the worker it took the job from). A lease that lapsed unrenewed was left
by a process that died (or stalled past it) and is taken over. On the holder's own host a dead
holder is seen at once, without waiting for the lapse: its pid is gone, or now belongs to a
process started at another time.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from brandloop.domain import utcnow
from brandloop.errors import ConflictError
from brandloop.registry import fencing
from brandloop.registry.db import Database
from brandloop.registry.models_agent import RunLeaseRow

__all__ = ["RELEASED", "Lease", "RunBusyError", "driving", "holder"]

log = logging.getLogger(__name__)

#: the owner of a lease given up (its holder stopped driving the run)
RELEASED = "released"


class RunBusyError(ConflictError):
    """The run is being driven by another live process: nothing was run or written."""


@dataclass(frozen=True)
class Lease:
    run_id: str
    owner: str


def _started(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, Linux), "" where that is not
    known: with the pid it names one process, whatever pid numbers are reused since."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, IndexError):
        return ""


def _process_gone(pid: int, started: str) -> bool:
    """Whether the process ``pid`` that started at ``started`` has ended (on this host)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        pass
    return bool(started) and _started(pid) not in ("", started)


def _live(row: RunLeaseRow, now: datetime) -> bool:
    """Whether ``row`` is held by a process still driving the run."""
    if row.owner == RELEASED or row.expires_at < now:
        return False
    return not (row.host == socket.gethostname() and _process_gone(row.pid, row.started))


def _busy(row: RunLeaseRow) -> RunBusyError:
    return RunBusyError(
        f"run {row.run_id} is still running in pid {row.pid} on host {row.host} (since "
        f"{row.acquired_at.isoformat(timespec='seconds')}); resume it once that process has "
        "stopped"
    )


def holder(session: Session, *, run_id: str) -> RunBusyError | None:
    """The error naming the live process driving the run, None when none does."""
    row = session.get(RunLeaseRow, run_id)
    if row is None or not _live(row, utcnow()):
        return None
    return _busy(row)


def _take(db: Database, *, tenant: str, run_id: str, ttl: float, force: bool) -> Lease:
    pid, host = os.getpid(), socket.gethostname()
    owner = f"{host}:{pid}:{uuid.uuid4().hex[:8]}"
    now = utcnow()
    values = {
        "tenant": tenant,
        "owner": owner,
        "host": host[:255],
        "pid": pid,
        "started": _started(pid),
        "acquired_at": now,
        "expires_at": now + timedelta(seconds=ttl),
    }
    with db.session() as session:
        row = session.get(RunLeaseRow, run_id)
        if row is None:
            session.add(RunLeaseRow(run_id=run_id, **values))
            try:
                session.flush()
            except IntegrityError:  # taken at the same moment by another process
                session.rollback()
                row = session.get(RunLeaseRow, run_id)
                raise (
                    _busy(row)
                    if row is not None
                    else RunBusyError(f"run {run_id} was just taken by another process")
                ) from None
            return Lease(run_id, owner)
        if _live(row, now) and not force:
            raise _busy(row)
        taken = session.execute(  # only if nobody took it since it was read
            update(RunLeaseRow)
            .where(RunLeaseRow.run_id == run_id, RunLeaseRow.owner == row.owner)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if getattr(taken, "rowcount", 0) != 1:
            session.rollback()
            raise RunBusyError(f"run {run_id} was just taken by another process")
        if row.owner != RELEASED:
            log.warning(
                "took over run %s from a process that stopped driving it",
                run_id,
                extra={"left_by": row.owner},
            )
        return Lease(run_id, owner)


def _renew(db: Database, lease: Lease, ttl: float) -> bool:
    with db.session() as session:
        result = session.execute(
            update(RunLeaseRow)
            .where(RunLeaseRow.run_id == lease.run_id, RunLeaseRow.owner == lease.owner)
            .values(expires_at=utcnow() + timedelta(seconds=ttl))
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))


def _release(db: Database, lease: Lease) -> None:
    with db.session() as session:
        session.execute(
            update(RunLeaseRow)
            .where(RunLeaseRow.run_id == lease.run_id, RunLeaseRow.owner == lease.owner)
            .values(owner=RELEASED, expires_at=utcnow())
            .execution_options(synchronize_session=False)
        )


@asynccontextmanager
async def driving(
    db: Database, *, tenant: str, run_id: str, ttl: float, force: bool = False
) -> AsyncIterator[Lease]:
    """Hold the run's lease while the block drives it: renewed every third of ``ttl`` on a
    thread of its own, given up when the block ends, however it ends (a SIGKILL aside: then
    it lapses, or is seen dead on its host). A live holder is a :class:`RunBusyError`, unless
    ``force``: a job worker that was just granted the run's job (its job lease, whose fencing
    token shuts out the worker before it) takes the run over from whoever had it.

    The lease is the process's, not a job's: its writes are not fenced by a job's token."""
    with fencing.holding(None):
        lease = _take(db, tenant=tenant, run_id=run_id, ttl=ttl, force=force)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(ttl / 3):
            try:
                if not _renew(db, lease, ttl):
                    log.warning("the lease of run %s was taken over", run_id)
                    return
            except Exception as exc:  # the registry unwritable a while: it may lapse
                log.warning("renewing the lease of run %s failed: %s", run_id, exc)

    thread = threading.Thread(target=beat, name=f"run-lease-{run_id}", daemon=True)
    thread.start()
    try:
        yield lease
    finally:
        stop.set()
        thread.join(timeout=10)
        with fencing.holding(None):
            try:
                _release(db, lease)
            except Exception:  # unwritable now: it lapses on its own
                log.info("could not give up the lease of run %s: it lapses", run_id)
