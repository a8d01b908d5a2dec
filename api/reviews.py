"""Reviewing runs and images: the rules the /v1 review routes, the studio's Review pages and the
CLI share. Four eyes: whoever asked for a run never approves it. Runs waiting for review
can be assigned; each reviewer keeps one rubric per image (on-brand 1-5, usable yes/no, a
note); pairwise judgements record which of two images (two template versions, or two models)
is better; an approved image becomes a golden case of the data dir's eval suite.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import random
import tempfile
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from brandloop.agent import review_claims
from brandloop.agent.nodes.intake import redacted_text
from brandloop.agent.review_claims import Verdict
from brandloop.agent.runner import finish_review
from brandloop.agent.templates import REF_PATTERN, shipped_template_names
from brandloop.api.auth import Principal
from brandloop.api.jobs import store
from brandloop.api.jobs.worker import WorkerPool, settle_reviewed
from brandloop.api.problems import ApiProblem
from brandloop.artifacts import atomic_write
from brandloop.domain import BrandKit, utcnow
from brandloop.errors import BadInputError, LeaseLostError
from brandloop.evals.loader import load_suite
from brandloop.evals.models import Suite
from brandloop.evals.runner import (
    check_references,
    template_file_document,
    template_refs,
    versions_to_carry,
)
from brandloop.policy_files import load_yaml_file
from brandloop.registry import crud
from brandloop.registry.models import ArtifactRow, AttemptRow, RunRow
from brandloop.registry.models_agent import ReviewClaimRow, ReviewDecisionRow
from brandloop.registry.models_service import ApiKeyRow, JobRow
from brandloop.registry.models_studio import (
    ImageRatingRow,
    PairwiseJudgementRow,
    ReviewAssignmentRow,
    StudioSessionRow,
)
from brandloop.settings import Settings
from brandloop.storage import StorageFailedError, storage_problem
from brandloop.templates.governance import ACTOR_PATTERN, same_person
from brandloop.tools.credentials import SigningError

Decision = Literal["approve", "reject"]
Axis = Literal["template", "model"]
Winner = Literal["left", "right", "tie"]
log = logging.getLogger(__name__)

GOLDEN_SUITE = "golden"
#: the folder beside the golden suite with the template versions its cases name
GOLDEN_TEMPLATES = "templates"


def requester_of(session: Session, *, tenant: str, run_id: str) -> str | None:
    """The principal who asked for the run (its job's ``requested_by``), if the API made it."""
    job = store.job_for_run(session, tenant=tenant, run_id=run_id)
    return job.requested_by if job is not None else None


def _run(session: Session, tenant: str, run_id: str) -> RunRow:
    """The tenant's run ``run_id``. One its job has not started yet (the job handed out its id
    as it was queued) is a 409, as a running run is: it exists, and is not waiting for review."""
    run = crud.get_run(session, tenant=tenant, run_id=run_id)
    if run is None:
        job = store.unstarted_job(session, tenant=tenant, run_id=run_id)
        if job is not None:
            raise ApiProblem(
                409,
                "conflict",
                f"run {run_id} has not started yet: its job {job[0]} is {job[1]}; a verdict "
                "finishes a run awaiting review, or is recorded on a delivered run",
            )
        raise ApiProblem(404, "not-found", f"no run {run_id}")
    return run


#: a run that delivered images: a verdict on it is recorded in the audit log, nothing resumes
DELIVERED = ("succeeded", "partial")


def _not_reviewable(session: Session, run: RunRow) -> str:
    """Why a verdict cannot apply to ``run`` (neither waiting for review nor delivered)."""
    earlier = session.scalar(
        select(ReviewDecisionRow)
        .where(ReviewDecisionRow.tenant == run.tenant, ReviewDecisionRow.run_id == run.id)
        .order_by(ReviewDecisionRow.id.desc())
        .limit(1)
    )
    done = {"approve": "approved", "reject": "rejected"}
    why = (
        f"was already {done.get(earlier.decision, earlier.decision)} by {earlier.actor} "
        f"(status {run.status})"
        if earlier is not None
        else f"is {run.status}"
    )
    return (
        f"run {run.id} {why}: a verdict finishes a run awaiting review, or is recorded on a "
        "delivered (succeeded or partial) run"
    )


def decide_run(
    session: Session,
    pool: WorkerPool,
    *,
    principal: Principal,
    run_id: str,
    decision: Decision,
    note: str,
) -> dict[str, Any]:
    """Approve or reject a run: one waiting for review is finished by the verdict (its job
    settles); on a delivered run the verdict is only recorded. Four eyes: the principal who
    asked for the run may not approve it, with any of their keys, nor under their name in
    another case (:func:`same_person`).

    A run whose verdict a process that stopped had claimed is finished, once that claim has
    lapsed (``BRANDLOOP_REVIEW_LEASE_SECONDS``), with the verdict recorded first
    (``agent/review_claims.py``): the answer is this verdict's if that one made the same
    decision (a retry, say), else a 409 naming whose verdict finished it.

    Called from a route running in the threadpool: the run is finished on the agents' loop
    (``finish_review``, ``WorkerPool.run_agent``) while this thread waits; the registry is read
    and written here."""
    tenant = principal.tenant
    note = redacted_text(note)  # stored and answered as a brief is: no personal data, no key
    run = _run(session, tenant, run_id)
    job = store.job_for_run(session, tenant=tenant, run_id=run.id)
    if (
        decision == "approve"
        and job is not None
        and job.requested_by is not None
        and same_person(job.requested_by, principal.name)
    ):
        raise ApiProblem(
            409,
            "conflict",
            f"four eyes: {job.requested_by} asked for run {run.id}; {principal.name} may not "
            "approve it (the same person, with any of their keys); ask another approver",
        )
    if run.status == "awaiting_review" and job is not None and job.state == "running":
        # the gate has marked the run, but its worker has not reached the wait yet
        raise ApiProblem(409, "conflict", f"run {run.id} is still being readied for review")
    verdict = {
        "run_id": run.id,
        "decision": decision,
        "note": note,
        "by": principal.name,
        "key_id": principal.key_id,
    }
    claimed = session.get(ReviewClaimRow, run.id)
    being_finished = (
        claimed is not None and claimed.tenant == tenant and claimed.owner != review_claims.RELEASED
    )
    if run.status != "awaiting_review" and not being_finished:
        if run.status not in DELIVERED:
            raise ApiProblem(409, "conflict", _not_reviewable(session, run))
        # a verdict on a delivered run: recorded, nothing resumes
        action = "run.approved" if decision == "approve" else "run.rejected"
        crud.audit(
            session, tenant=tenant, actor=principal.name, action=action,
            subject_type="run", subject_id=run.id,
            detail={"note": note, "key_id": principal.key_id},
        )  # fmt: skip
        return {**verdict, "status": run.status}
    session.commit()  # nothing held while the run finishes in its own sessions
    providers = pool.providers_factory(pool.settings) if pool.providers_factory else None
    asked = Verdict(decision, note, principal.name)
    try:
        outcome = pool.run_agent(  # on the agents' loop, never the serving loop
            functools.partial(
                finish_review,
                run.id,
                settings=pool.settings,
                db=pool.db,
                verdict=asked,
                by=principal.name,
                tenant=tenant,
                providers=providers,
                use_memory=pool.use_memory,
            )
        )
    except LeaseLostError:
        raise ApiProblem(
            409,
            "conflict",
            f"run {run.id}: this verdict's claim lapsed while it was being applied (the "
            "process stalled) and another took the run over; see the run for how it ended",
        ) from None
    except SigningError as exc:  # the run waits for review again, nothing it paid for lost
        raise ApiProblem(
            503,
            SigningError.problem_type,
            f"{exc}; run {run.id} waits for review again: POST /v1/review/runs/{run.id} gives "
            "the verdict again once the signer is back",
        ) from None
    except Exception as exc:
        failed = _storage_failed(exc, pool.settings, run.id)
        if failed is None:
            raise
        raise failed from None
    try:
        with pool.db.session() as own:  # its own transaction: kept whatever is answered below
            settle_reviewed(own, tenant=tenant, run_id=run.id, result=outcome.result)
    except Exception as exc:
        problem = storage_problem(exc, writer="the service")
        if problem is None:
            raise
        # the verdict is applied (the run has ended): only its job's record waits, and is
        # written once the registry takes it again
        log.error(
            "run %s ended %s by a verdict; its job is settled later: storage failed: %s",
            run.id, outcome.result.status, problem,
        )  # fmt: skip
        pool.settle_reviewed_later(tenant, run.id, outcome.result)
    problem = outcome.not_the_callers(asked)
    if problem is not None:
        raise ApiProblem(409, "conflict", problem)
    return {**verdict, "status": outcome.result.status}


def _storage_failed(exc: Exception, settings: Settings, run_id: str) -> ApiProblem | None:
    """What a verdict that could not be recorded or applied answers when its storage failed
    (the artifact folder, the registry, the checkpoint file): a 503 ``storage-failed`` in plain
    words - the run waits for review again (``finish_review`` puts it back), so the verdict
    can be given again once that is fixed. None for any other error (an internal one)."""
    roots = {"<artifacts dir>": settings.artifacts_dir, "<data dir>": settings.data_dir}
    problem = storage_problem(exc, writer="the service", roots=roots)
    if problem is None:
        return None
    log.error("verdict on run %s not applied: storage failed: %s", run_id, problem)
    return ApiProblem(
        503,
        StorageFailedError.problem_type,
        f"storage failed: {problem}; run {run_id} waits for review again: POST "
        f"/v1/review/runs/{run_id} gives the verdict again once that is fixed",
    )


@dataclass
class QueueItem:
    run: RunRow
    assignee: str | None
    requester: str | None


def waiting(session: Session, *, tenant: str, assignee: str | None = None) -> list[QueueItem]:
    """Runs waiting for review, oldest first, with who they are assigned to."""
    runs = list(
        session.scalars(
            select(RunRow)
            .where(RunRow.tenant == tenant, RunRow.status == "awaiting_review")
            .order_by(RunRow.created_at, RunRow.id)
        )
    )
    ids = [r.id for r in runs]
    assigned = {
        a.run_id: a.assignee
        for a in session.scalars(
            select(ReviewAssignmentRow).where(ReviewAssignmentRow.run_id.in_(ids))
        )
    }
    requesters = {
        j.run_id: j.requested_by
        for j in session.scalars(select(JobRow).where(JobRow.run_id.in_(ids)))
    }
    items = [QueueItem(r, assigned.get(r.id), requesters.get(r.id)) for r in runs]
    if assignee is not None:
        items = [i for i in items if i.assignee == assignee]
    return items


#: the roles that may give a verdict on a run
REVIEWER_ROLES = ("approver", "admin")


def is_reviewer(session: Session, *, tenant: str, name: str) -> bool:
    """Whether the tenant's principal ``name`` (exact) may review: it holds an approver or
    admin key that is not revoked, or is signed in to the studio with such a role (a sign-in
    link gives a role without a key). A session signed in with a key counts only while that
    key is live, as ``session_user`` accepts it only then."""
    key = session.scalar(
        select(ApiKeyRow.id)
        .where(
            ApiKeyRow.tenant == tenant,
            ApiKeyRow.principal == name,
            ApiKeyRow.role.in_(REVIEWER_ROLES),
            ApiKeyRow.revoked_at.is_(None),
        )
        .limit(1)
    )
    if key is not None:
        return True
    signed_in = session.scalar(
        select(StudioSessionRow.id)
        .outerjoin(ApiKeyRow, ApiKeyRow.id == StudioSessionRow.key_id)
        .where(
            StudioSessionRow.tenant == tenant,
            StudioSessionRow.principal == name,
            StudioSessionRow.role.in_(REVIEWER_ROLES),
            StudioSessionRow.revoked_at.is_(None),
            StudioSessionRow.expires_at > utcnow(),
            or_(StudioSessionRow.key_id.is_(None), ApiKeyRow.revoked_at.is_(None)),
            or_(StudioSessionRow.key_id.is_(None), ApiKeyRow.id.is_not(None)),
        )
        .limit(1)
    )
    return signed_in is not None


def assign(session: Session, *, tenant: str, run_id: str, assignee: str, by: str) -> None:
    run = _run(session, tenant, run_id)
    if run.status != "awaiting_review":
        raise ApiProblem(409, "conflict", f"run {run_id} is {run.status}, not awaiting review")
    if not ACTOR_PATTERN.fullmatch(assignee):
        raise ApiProblem(
            422,
            "bad-input",
            "the assignee is a principal's name: 1-120 of A-Z a-z 0-9 _ . @ -, starting with a "
            "letter or digit",
        )
    if not is_reviewer(session, tenant=tenant, name=assignee):
        raise ApiProblem(
            422,
            "bad-input",
            f"no reviewer {assignee!r} in this tenant: the assignee is a principal with an "
            "approver or admin key that is not revoked, or signed in to the studio as one (with a "
            "link, or a key that is not revoked)",
        )
    requester = requester_of(session, tenant=tenant, run_id=run.id)
    if requester is not None and same_person(requester, assignee):
        raise ApiProblem(
            409,
            "conflict",
            f"four eyes: {requester} asked for run {run.id}, so {assignee} may not approve it; "
            "assign another reviewer",
        )
    row = session.get(ReviewAssignmentRow, run.id)
    if row is None:
        session.add(
            ReviewAssignmentRow(run_id=run.id, tenant=tenant, assignee=assignee, assigned_by=by)
        )
    else:
        row.assignee, row.assigned_by, row.assigned_at = assignee, by, utcnow()
    crud.audit(
        session, tenant=tenant, actor=by, action="run.review.assigned",
        subject_type="run", subject_id=run.id, detail={"assignee": assignee},
    )  # fmt: skip


def _artifact(session: Session, tenant: str, sha256: str) -> ArtifactRow:
    row = crud.get_artifact(session, tenant=tenant, sha256=sha256)
    if row is None or row.run_id is None:
        raise ApiProblem(404, "not-found", f"no image {sha256}")
    return row


def rate(
    session: Session,
    *,
    tenant: str,
    sha256: str,
    actor: str,
    on_brand: int,
    usable: bool,
    note: str = "",
) -> ImageRatingRow:
    """This reviewer's rubric for the image (a second rating by them replaces the first)."""
    if not 1 <= on_brand <= 5:
        raise ApiProblem(422, "bad-input", "on-brand is rated 1 to 5")
    artifact = _artifact(session, tenant, sha256)
    row = session.scalar(
        select(ImageRatingRow).where(
            ImageRatingRow.tenant == tenant,
            ImageRatingRow.sha256 == sha256,
            ImageRatingRow.principal == actor,
        )
    )
    if row is None:
        row = ImageRatingRow(tenant=tenant, sha256=sha256, principal=actor, run_id=artifact.run_id)
        session.add(row)
    row.on_brand, row.usable, row.note, row.updated_at = on_brand, usable, note, utcnow()
    session.flush()
    return row


def ratings(session: Session, *, tenant: str, shas: list[str]) -> dict[str, list[ImageRatingRow]]:
    found: dict[str, list[ImageRatingRow]] = defaultdict(list)
    for row in session.scalars(
        select(ImageRatingRow).where(
            ImageRatingRow.tenant == tenant, ImageRatingRow.sha256.in_(shas)
        )
    ):
        found[row.sha256].append(row)
    return found


@dataclass(frozen=True)
class ImageActions:
    """What the review page offers for one image: only what would succeed if posted."""

    #: the tenant still has the image: a rubric can be given (a deleted one is a 404)
    rateable: bool
    #: why the image cannot be added to the golden suite now; None: the action is offered
    golden_refusal: str | None


def image_actions(
    session: Session, *, tenant: str, run_id: str, shas: list[str]
) -> dict[str, ImageActions]:
    """Per image of run ``run_id``'s review page, which of its actions would succeed: the
    page offers those only, so a button is never a 404 or 409 page."""
    actions = {}
    for sha in dict.fromkeys(shas):
        try:
            _golden_source(session, tenant=tenant, run_id=run_id, sha256=sha)
            refusal = None
        except ApiProblem as exc:
            refusal = exc.detail
        row = crud.get_artifact(session, tenant=tenant, sha256=sha)
        actions[sha] = ImageActions(row is not None and row.run_id is not None, refusal)
    return actions


@dataclass
class Pair:
    brand: str
    axis: Axis
    left_sha: str
    right_sha: str
    left_ref: str
    right_ref: str
    #: each image's brief (the run that made it), for the image's alt text
    left_brief: str = ""
    right_brief: str = ""


def next_pair(
    session: Session, *, tenant: str, actor: str, axis: Axis, seed: int | None = None
) -> Pair | None:
    """Two images of one brand from two template versions (or two models) this reviewer has not
    compared yet, from the tenant's latest 400 scored attempts whose images it still has (one
    deleted, or removed by ``brandloop gc``, is never shown); None when there is none.

    Which image is on the left is drawn afresh for every call (a fixed draw would put the
    version that sorts first on the left every time: position bias in the win rates); ``seed``
    makes the draw repeatable for a test that needs it."""
    rows = session.execute(
        select(
            AttemptRow.artifact_sha256,
            AttemptRow.template_ref,
            AttemptRow.model,
            RunRow.brand_name,
            RunRow.brief,
        )
        .join(RunRow, RunRow.id == AttemptRow.run_id)
        .join(
            ArtifactRow,
            (ArtifactRow.tenant == tenant)
            & (ArtifactRow.sha256 == AttemptRow.artifact_sha256)
            & ArtifactRow.deleted_at.is_(None),
        )
        .where(
            RunRow.tenant == tenant,
            AttemptRow.artifact_sha256.is_not(None),
            AttemptRow.composite.is_not(None),
        )
        .order_by(AttemptRow.created_at.desc())
        .limit(400)
    ).all()
    seen = {
        frozenset((j.left_sha256, j.right_sha256))
        for j in session.scalars(
            select(PairwiseJudgementRow).where(
                PairwiseJudgementRow.tenant == tenant, PairwiseJudgementRow.principal == actor
            )
        )
    }
    buckets: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    briefs: dict[str, str] = {}
    for sha, template, model, brand, brief in rows:
        key = template if axis == "template" else model
        if sha not in buckets[brand][key]:
            buckets[brand][key].append(str(sha))
            briefs.setdefault(str(sha), brief or "")
    rng = random.Random(seed)
    for brand, by_key in sorted(buckets.items()):
        keys = sorted(by_key)
        for i, a in enumerate(keys):
            for b in keys[i + 1 :]:
                for left in by_key[a]:
                    for right in by_key[b]:
                        if frozenset((left, right)) not in seen:
                            if rng.random() < 0.5:  # which side is which is not a hint
                                left, right, a, b = right, left, b, a
                            return Pair(brand, axis, left, right, a, b, briefs[left], briefs[right])
    return None


def _maker(session: Session, tenant: str, artifact: ArtifactRow) -> tuple[AttemptRow, RunRow]:
    """The attempt of ``tenant`` that made ``artifact``'s image, and its run: the one of the
    run the tenant's artifact row names, else the tenant's latest. Never found by the sha256
    alone: another tenant's run can make the same bytes (the procedural renderer does, for the
    same colours, seed, size and model), and the first such attempt anywhere once credited a
    tenant's pairwise tally with another tenant's private template."""
    mine = (
        select(AttemptRow)
        .join(RunRow, RunRow.id == AttemptRow.run_id)
        .where(RunRow.tenant == tenant, AttemptRow.artifact_sha256 == artifact.sha256)
    )
    attempt = session.scalar(
        mine.order_by(
            (AttemptRow.run_id == artifact.run_id).desc(),
            AttemptRow.created_at.desc(),
            AttemptRow.id.desc(),
        ).limit(1)
    )
    run = None if attempt is None else session.get(RunRow, attempt.run_id)
    if attempt is None or run is None:
        raise ApiProblem(404, "not-found", f"no attempt made image {artifact.sha256}")
    return attempt, run


def judge_pair(
    session: Session,
    *,
    tenant: str,
    actor: str,
    axis: Axis,
    left_sha: str,
    right_sha: str,
    winner: Winner,
) -> PairwiseJudgementRow:
    refs = []
    brand = ""
    for sha in (left_sha, right_sha):
        attempt, run = _maker(session, tenant, _artifact(session, tenant, sha))
        refs.append(attempt.template_ref if axis == "template" else attempt.model)
        brand = run.brand_name
    if left_sha == right_sha or refs[0] == refs[1]:
        raise ApiProblem(422, "bad-input", f"a pair compares two different {axis}s")
    low, high = sorted((left_sha, right_sha))
    judged = {
        "brand": brand, "left_sha256": left_sha, "right_sha256": right_sha,
        "left_ref": refs[0], "right_ref": refs[1], "winner": winner, "created_at": utcnow(),
    }  # fmt: skip
    key = (
        PairwiseJudgementRow.tenant == tenant,
        PairwiseJudgementRow.axis == axis,
        PairwiseJudgementRow.principal == actor,
        PairwiseJudgementRow.pair_low == low,
        PairwiseJudgementRow.pair_high == high,
    )
    # one judgement per reviewer and pair: a repeat replaces it (the unique index settles two
    # posted at once: the one that loses the insert updates the winner's row instead)
    for _ in range(2):
        row = session.scalar(select(PairwiseJudgementRow).where(*key))
        if row is not None:
            for name, value in judged.items():
                setattr(row, name, value)
            session.flush()
            return row
        row = PairwiseJudgementRow(
            tenant=tenant, axis=axis, principal=actor, pair_low=low, pair_high=high, **judged
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            continue
        return row
    raise ApiProblem(409, "conflict", "this pair was judged at the same moment; send it again")


def pairwise_tally(session: Session, *, tenant: str, axis: Axis) -> list[dict[str, Any]]:
    """Per template version (or model): wins, losses and ties in pairwise judgements."""
    tally: dict[str, dict[str, int]] = defaultdict(lambda: {"wins": 0, "losses": 0, "ties": 0})
    for j in session.scalars(
        select(PairwiseJudgementRow).where(
            PairwiseJudgementRow.tenant == tenant, PairwiseJudgementRow.axis == axis
        )
    ):
        if j.winner == "tie":
            tally[j.left_ref]["ties"] += 1
            tally[j.right_ref]["ties"] += 1
        else:
            won, lost = (
                (j.left_ref, j.right_ref) if j.winner == "left" else (j.right_ref, j.left_ref)
            )
            tally[won]["wins"] += 1
            tally[lost]["losses"] += 1
    out = []
    for ref, t in sorted(tally.items()):
        decided = t["wins"] + t["losses"]
        out.append(
            {"ref": ref, **t, "win_rate": round(t["wins"] / decided, 4) if decided else None}
        )
    return out


def suites_dir(settings: Settings, tenant: str) -> Path:
    """The tenant's own eval suites and results (tenant ids are [A-Za-z0-9_-], exact)."""
    return settings.data_dir / "evals" / "tenants" / tenant


def golden_suite_path(settings: Settings, tenant: str) -> Path:
    return suites_dir(settings, tenant) / f"{GOLDEN_SUITE}.yaml"


def _golden_source(
    session: Session, *, tenant: str, run_id: str, sha256: str
) -> tuple[RunRow, AttemptRow, BrandKit]:
    """The run, attempt and brand kit a golden case of ``sha256`` is made from, or the
    :class:`ApiProblem` saying why the image cannot be one now.

    The case is made from run ``run_id``'s attempt that produced the image (two runs can make
    the same bytes; the artifact row names only the first), and only from an image that run
    delivered and the tenant still has: an accepted attempt of a run that succeeded (or
    partly) - a run awaiting review only once it is approved, never a candidate the
    acceptance rule rejected - that reviewers found usable."""
    artifact = _artifact(session, tenant, sha256)
    run = _run(session, tenant, run_id)
    made = session.scalars(
        select(AttemptRow).where(AttemptRow.run_id == run.id, AttemptRow.artifact_sha256 == sha256)
    ).all()
    if not made and artifact.run_id == run.id:  # the file the run shipped (receipt inside)
        shipped = session.get(AttemptRow, artifact.attempt_id) if artifact.attempt_id else None
        if shipped is None or shipped.run_id != run.id:
            raise ApiProblem(
                409, "conflict", f"image {sha256[:12]} has no scored attempt behind it"
            )
        made = [shipped]
    if not made:
        raise ApiProblem(404, "not-found", f"run {run.id} made no image {sha256[:12]}")
    attempt = next((a for a in made if a.outcome == "accepted"), made[0])
    if attempt.outcome != "accepted":
        raise ApiProblem(
            409,
            "conflict",
            f"image {sha256[:12]} was {attempt.outcome} by the acceptance rule in run {run.id}: "
            "only an accepted image is a golden case",
        )
    if run.status == "awaiting_review":
        raise ApiProblem(
            409,
            "conflict",
            f"run {run.id} is awaiting review: its images can be added to the golden suite once "
            "the run is approved",
        )
    if run.status not in DELIVERED:
        raise ApiProblem(
            409,
            "conflict",
            f"run {run.id} is {run.status}: only an image of a run that delivered it is a "
            "golden case",
        )
    usable = list(_usable_verdicts(session, tenant=tenant, shas={sha256, attempt.artifact_sha256}))
    if not usable or sum(usable) * 2 <= len(usable):
        raise ApiProblem(
            409, "conflict", "a golden case needs reviewers' verdict that the image is usable"
        )
    if attempt.composite is None:
        raise ApiProblem(409, "conflict", f"image {sha256[:12]} has no scored attempt behind it")
    brand_row = crud.get_brand(session, tenant=tenant, ref=run.brand_id or run.brand_name)
    if brand_row is None:
        raise ApiProblem(409, "conflict", f"brand {run.brand_name!r} is gone")
    return run, attempt, crud.brand_kit(brand_row)


def _usable_verdicts(session: Session, *, tenant: str, shas: set[str | None]) -> Iterator[bool]:
    """Each reviewer's latest "usable" of one image, rated as any of ``shas``: the file a run
    delivered and the attempt's image it was signed from, which reviewers rate while the run
    waits for review (one verdict per reviewer, however many of the two they rated)."""
    rows = session.execute(
        select(ImageRatingRow.principal, ImageRatingRow.usable)
        .where(ImageRatingRow.tenant == tenant, ImageRatingRow.sha256.in_(shas - {None}))
        .order_by(ImageRatingRow.updated_at, ImageRatingRow.id)
    )
    latest: dict[str, bool] = {}
    for principal, usable in rows:  # the newest of a reviewer's ratings wins
        latest[principal] = usable
    yield from latest.values()


def add_golden(
    session: Session, settings: Settings, *, tenant: str, run_id: str, sha256: str, actor: str
) -> str:
    """Add an image reviewers found usable (the majority of its rubrics) as a golden case of
    the tenant's golden suite
    (``<data_dir>/evals/tenants/<tenant>/golden.yaml``):
    the same brief, brand, size, seed, template and model must again give an accepted image at
    least as good (composite - 0.05). Returns the case id. The suite is checked by the eval
    loader after every write, and an image already in it is not added twice.

    Which images qualify is :func:`_golden_source`'s rule (the review page offers the action
    only for those, :func:`image_actions`); otherwise a 404 (the run made no such image) or a
    409 naming why."""
    run, attempt, kit = _golden_source(session, tenant=tenant, run_id=run_id, sha256=sha256)
    path = golden_suite_path(settings, tenant)
    path.parent.mkdir(parents=True, exist_ok=True)
    # read, append, write under the suite's lock: two reviewers adding cases at once (threads
    # of one API process, or two replicas on one data dir) must both land
    with _suite_lock(path):
        case_id = _append_golden(path, kit, run, attempt, sha256=sha256, actor=actor)
        # the suite carries the template versions its cases name: the eval registry a run
        # gets is fresh, and holds the shipped templates only
        files, _ = _golden_templates(session, tenant=tenant, suite=load_suite(path))
        _write_carried(path, files)
    crud.audit(
        session, tenant=tenant, actor=actor, action="eval.golden_added",
        subject_type="image", subject_id=sha256, detail={"case": case_id, "suite": str(path)},
    )  # fmt: skip
    return case_id


def _golden_templates(
    session: Session, *, tenant: str, suite: Suite
) -> tuple[list[tuple[str, bytes]], list[str]]:
    """The template files the golden suite lacks for the versions its cases (or targets) name
    by number: (path relative to the suite, content) for each version the tenant's registry
    holds; and why the rest cannot be carried, one line each: a version the tenant's registry
    does not hold either, a ref by label to a template of the tenant's (a label moves, and a
    fresh registry holds none of the tenant's)."""
    files: list[tuple[str, bytes]] = []
    cannot: list[str] = []
    for ref in sorted({ref for t in suite.targets for ref in template_refs(suite, t)}):
        match = REF_PATTERN.fullmatch(ref)
        if (
            match
            and not match["version"]
            and match["name"] not in shipped_template_names()
            and crud.get_template(session, tenant=tenant, name=match["name"]) is not None
        ):
            cannot.append(
                f"{ref} names a template of this tenant's by label, which a golden run "
                f"cannot carry: name a version ({match['name']}@N)"
            )
    for name, number in versions_to_carry(suite, suite.targets):
        template = crud.get_template(session, tenant=tenant, name=name)
        row = (
            crud.get_template_version(session, template_id=template.id, version=number)
            if template is not None
            else None
        )
        if template is None or row is None:
            cannot.append(f"this tenant's registry does not hold {name}@{number} either")
            continue
        document = template_file_document(
            crud.template_version_model(template, row), description=template.description
        )
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
        files.append((f"{GOLDEN_TEMPLATES}/{name}@{number}.yaml", text.encode()))
    return files, cannot


def _write_carried(path: Path, files: list[tuple[str, bytes]]) -> None:
    """Write the template files beside the suite and list each in every target's
    ``templates`` (the caller holds the suite's lock)."""
    if not files:
        return
    data = load_yaml_file(path, what="golden suite")
    for relative, content in files:
        atomic_write(path.parent / relative, content)
    targets = data.get("targets") or [{"name": "default"}]
    for target in targets:
        listed = target.setdefault("templates", [])
        listed += [relative for relative, _ in files if relative not in listed]
    data["targets"] = targets
    atomic_write(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode())


def prepare_golden_run(session: Session, settings: Settings, *, tenant: str) -> Suite:
    """The tenant's golden suite, ready to run.

    Every case runs in a fresh eval registry, which holds the shipped templates only, so the
    suite carries the template versions its cases name (``templates/<name>@<N>.yaml``, listed
    in each target's ``templates``); :func:`add_golden` copies them as cases are added, and
    here a suite written before that is brought up to date from the tenant's registry. What
    the run would then still fail on - a version neither the suite nor the tenant's registry
    holds, a ref by label to a template of the tenant's, a model not in the catalog - is a
    :class:`BadInputError` naming it, and nothing is written: the copies are checked from a
    scratch folder first."""
    path = golden_suite_path(settings, tenant)
    with _suite_lock(path):
        try:
            suite = load_suite(path)
        except BadInputError as exc:
            raise BadInputError(f"the golden suite cannot run until it is fixed: {exc}") from None
        files, cannot = _golden_templates(session, tenant=tenant, suite=suite)
        with tempfile.TemporaryDirectory(prefix="golden-templates-") as scratch:
            extra = []
            for relative, content in files:
                file = Path(scratch) / Path(relative).name
                file.write_bytes(content)
                extra.append(str(file))
            targets = [
                t.model_copy(update={"templates": [*t.templates, *extra]}) for t in suite.targets
            ]
            try:
                check_references(suite, targets, settings=settings)
            except BadInputError as exc:
                refused = f"the golden suite was not run and nothing was stored: {exc}"
                raise BadInputError("; ".join([refused, *cannot])) from None
        if files:
            _write_carried(path, files)
            suite = load_suite(path)
    return suite


_SUITE_LOCK = threading.Lock()


@contextmanager
def _suite_lock(path: Path) -> Iterator[None]:
    """Exclusive access to a suite file: a thread lock for this process, ``flock`` on a lock
    file beside it for other processes on the same data dir."""
    with _SUITE_LOCK, open(path.with_suffix(".lock"), "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _empty_golden() -> dict[str, Any]:
    return {
        "format": "brandloop.eval-suite/1",
        "name": GOLDEN_SUITE,
        "version": 1,
        "description": "images reviewers approved, added from the studio's review queue",
        "brands": [],
        "targets": [{"name": "default"}],
        "cases": [],
    }


def _append_golden(
    path: Path, kit: BrandKit, run: RunRow, attempt: AttemptRow, *, sha256: str, actor: str
) -> str:
    """Append the image's case to the suite file (kept as it was if the result would not load).
    A suite file someone broke by hand is a 409 naming it, never a 500 or a silent reset."""
    kit_file = path.parent / "brands" / f"{kit.slug}.yaml"
    before = path.read_bytes() if path.is_file() else None
    if before is None:
        data = _empty_golden()
    else:
        try:
            load_suite(path)
            data = load_yaml_file(path, what="golden suite")
        except BadInputError as exc:
            raise ApiProblem(
                409, "conflict", f"the golden suite cannot take new cases until it is fixed: {exc}"
            ) from None
    case_id = f"golden-{sha256[:16]}"
    if any(c.get("id") == case_id for c in data["cases"]):
        return case_id
    atomic_write(kit_file, yaml.safe_dump(kit.model_dump(mode="json"), sort_keys=False).encode())
    relative = f"brands/{kit_file.name}"
    if relative not in data["brands"]:
        data["brands"].append(relative)
    data["version"] = int(data.get("version", 1)) + (1 if data["cases"] else 0)
    data["cases"].append(
        {
            "id": case_id,
            "brief": run.brief,
            "brand": kit.name,
            "request": {
                "size": f"{attempt.width}x{attempt.height}",
                "seed": attempt.seed_requested,
                "template": attempt.template_ref,
                "model": attempt.model,
            },
            "assertions": [
                {"kind": "accepted"},
                {
                    "kind": "min_score",
                    "signal": "composite",
                    "min": round(max(0.0, (attempt.composite or 0.0) - 0.05), 3),
                },
            ],
            "tags": ["golden"],
            "description": (
                f"added by {actor}, rated usable by reviewers; image {sha256}, accepted in run "
                f"{run.id} ({run.status})"
            ),
        }
    )
    atomic_write(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode())
    try:
        load_suite(path)  # a broken suite is an error now, not at the next eval run
    except BadInputError as exc:
        if before is None:
            path.unlink()
        else:
            atomic_write(path, before)
        raise ApiProblem(409, "conflict", f"the golden case would break the suite: {exc}") from None
    return case_id
