"""Judge agreement: how often the automatic acceptance rule agrees with human reviewers, per
signal and per brand, with the disagreements listed, so a team can see whether its thresholds
match its taste.

A labelled item is an image as one run made it, (run, sha256): images are content-addressed
and a remembered seed reproduces the same bytes, so one image can be two runs' images, approved
in one and rejected in the other; that is two labels, each with its own run, reviewer and note.
Human labels are the reviewers' rubric verdicts (``usable`` yes/no; several reviewers of one
image: the majority, a tie is no label; under the run the ratings are filed with), and a run
review's verdict on the images its run held back (approve: the delivered images are usable;
reject: the images the rule had accepted are not); a rubric verdict wins over its run's review.
The rule's verdict is re-computed from each image's stored scores with the agent's acceptance
rule (every signal passes, when the policy asks for that, and the composite reaches its bar);
a signal's verdict is whether it passed. Agreement is the share of labelled images where rule
and people say the same; Cohen's kappa corrects it for chance. No labelled image: not measured.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from brandloop.policies.agent import AgentPolicy, load_agent_policy
from brandloop.registry import crud
from brandloop.registry.models import ArtifactRow, AttemptRow, RunRow
from brandloop.registry.models_agent import ReviewDecisionRow
from brandloop.registry.models_studio import ImageRatingRow

__all__ = ["AgreementFigure", "AgreementReport", "Disagreement", "judge_agreement"]


class AgreementFigure(BaseModel):
    """Agreement over a set of labelled images; ``agreement`` is None when none is labelled."""

    model_config = ConfigDict(extra="forbid")

    labelled: int
    agree: int
    agreement: float | None = Field(description="share that agree; None: not measured")
    kappa: float | None = Field(description="Cohen's kappa; None where it is undefined")
    both_accept: int = 0
    both_reject: int = 0
    rule_only: int = Field(default=0, description="the rule accepted, people did not")
    people_only: int = Field(default=0, description="people accepted, the rule did not")


class Disagreement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha256: str
    run_id: str
    brand: str
    rule_accepts: bool
    people_accept: bool
    composite: float | None
    failed_signals: list[str]
    notes: list[str]


class AgreementReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str
    brand: str | None
    overall: AgreementFigure
    by_brand: dict[str, AgreementFigure]
    by_signal: dict[str, AgreementFigure]
    disagreements: list[Disagreement]
    sources: dict[Literal["rubric", "run_review"], int]


def _figure(pairs: list[tuple[bool, bool]]) -> AgreementFigure:
    """``pairs`` of (rule, people) verdicts."""
    n = len(pairs)
    counts = Counter(pairs)
    both_accept, both_reject = counts[(True, True)], counts[(False, False)]
    agree = both_accept + both_reject
    kappa = None
    if n:
        rule_yes = (counts[(True, True)] + counts[(True, False)]) / n
        people_yes = (counts[(True, True)] + counts[(False, True)]) / n
        chance = rule_yes * people_yes + (1 - rule_yes) * (1 - people_yes)
        if chance < 1:
            kappa = round((agree / n - chance) / (1 - chance), 4)
    return AgreementFigure(
        labelled=n,
        agree=agree,
        agreement=round(agree / n, 4) if n else None,
        kappa=kappa,
        both_accept=both_accept,
        both_reject=both_reject,
        rule_only=counts[(True, False)],
        people_only=counts[(False, True)],
    )


def rule_accepts(attempt: AttemptRow, policy: AgentPolicy) -> bool:
    """The agent's acceptance rule on an attempt's stored scores (``agent.diagnosis``)."""
    signals = (attempt.scores or {}).get("signals") or {}
    if attempt.composite is None:
        return False
    if policy.require_all_signals and any(not s.get("passed") for s in signals.values()):
        return False
    return attempt.composite >= policy.accept_composite


@dataclass
class _Label:
    """People's verdict on one image as one run held it back, and what it rests on."""

    people: bool
    source: Literal["rubric", "run_review"]
    attempt_id: str | None
    notes: list[str] = field(default_factory=list)


#: A labelled item: the image *as a run made it* (run id, sha256). Images are
#: content-addressed and a remembered seed reproduces the same bytes, so one sha256 can be the
#: image of several runs, each judged by its own reviewer: keyed by the sha alone, one run's
#: verdict (and note) would be credited to another run and the other verdict lost.
_Key = tuple[str, str]


def _attempt_in_run(session: Session, run_id: str, sha: str, *, outcome: str) -> str | None:
    """The id of the run's attempt that made ``sha``, one with ``outcome`` first."""
    attempts = session.scalars(
        select(AttemptRow)
        .where(AttemptRow.run_id == run_id, AttemptRow.artifact_sha256 == sha)
        .order_by(AttemptRow.id)
    ).all()
    chosen = next((a for a in attempts if a.outcome == outcome), attempts[0] if attempts else None)
    return chosen.id if chosen is not None else None


def _delivered_attempt(session: Session, tenant: str, run_id: str, sha: str) -> AttemptRow | None:
    """The run's attempt behind a delivered file: the file (receipt inside) is recorded with
    the attempt it was finished from; the rule judged that attempt's image."""
    artifact = session.scalar(
        select(ArtifactRow).where(ArtifactRow.tenant == tenant, ArtifactRow.sha256 == sha)
    )
    attempt = (
        session.get(AttemptRow, artifact.attempt_id)
        if artifact is not None and artifact.attempt_id
        else None
    )
    if attempt is not None and attempt.run_id == run_id:
        return attempt
    found = _attempt_in_run(session, run_id, sha, outcome="accepted")
    return session.get(AttemptRow, found) if found else None


def _rubric_labels(session: Session, tenant: str) -> dict[_Key, _Label]:
    """The reviewers' rubric verdicts: the majority of ``usable`` per image, under the run
    the ratings are filed with (a tie is no label). A rating of a delivered file counts for
    the image the rule judged, so it meets that run's review on the same key."""
    votes: dict[_Key, list[bool]] = defaultdict(list)
    notes: dict[_Key, list[str]] = defaultdict(list)
    attempts: dict[_Key, str | None] = {}
    ratings = select(ImageRatingRow).where(ImageRatingRow.tenant == tenant)
    for rating in session.scalars(ratings.order_by(ImageRatingRow.id)):
        attempt = _delivered_attempt(session, tenant, rating.run_id, rating.sha256)
        key = (rating.run_id, (attempt.artifact_sha256 if attempt else None) or rating.sha256)
        attempts.setdefault(key, attempt.id if attempt is not None else None)
        votes[key].append(rating.usable)
        if rating.note:
            notes[key].append(f"{rating.principal}: {rating.note}")
    return {
        key: _Label(
            people=sum(ballot) * 2 > len(ballot),
            source="rubric",
            attempt_id=attempts[key],
            notes=notes.get(key, []),
        )
        for key, ballot in votes.items()
        if sum(ballot) * 2 != len(ballot)
    }


def _labels(session: Session, tenant: str, policy: AgentPolicy) -> dict[_Key, _Label]:
    """(run id, sha256) -> people's verdict on that run's image, its notes and its source.

    A run review labels the images *its* run held back, with *its* reviewer's note; the same
    bytes approved in one run and rejected in another are two labels. A rubric verdict on the
    image in a run wins over that run's review."""
    labels = _rubric_labels(session, tenant)
    reviews = session.scalars(
        select(ReviewDecisionRow)
        .where(ReviewDecisionRow.tenant == tenant)
        .order_by(ReviewDecisionRow.id)
    )
    for review in reviews:
        run = session.get(RunRow, review.run_id)
        if run is None or run.tenant != tenant:
            continue
        approved = review.decision == "approve"
        held: dict[str, str | None] = {}  # the image as the rule judged it -> its attempt
        if approved:
            for image in (run.result or {}).get("images", []):
                attempt = _delivered_attempt(session, tenant, run.id, str(image["sha256"]))
                if attempt is not None and attempt.artifact_sha256:
                    held.setdefault(attempt.artifact_sha256, attempt.id)
        else:
            attempts = session.scalars(
                select(AttemptRow)
                .where(AttemptRow.run_id == run.id, AttemptRow.outcome == "rejected")
                .order_by(AttemptRow.id)
            )
            for a in attempts:
                if a.artifact_sha256 and rule_accepts(a, policy):
                    held.setdefault(a.artifact_sha256, a.id)
        note = [f"{review.actor} (run review): {review.note}"] if review.note else []
        for sha, attempt_id in held.items():
            key = (run.id, sha)
            if key not in labels:  # a rubric verdict on the image in this run wins
                labels[key] = _Label(
                    people=approved, source="run_review", attempt_id=attempt_id, notes=note
                )
    return labels


def judge_agreement(
    session: Session, *, tenant: str, brand: str | None = None, policy: AgentPolicy | None = None
) -> AgreementReport:
    """The tenant's agreement figures (one brand's, when ``brand`` is given)."""
    policy = policy or load_agent_policy()
    labels = _labels(session, tenant, policy)
    # the brand as the registry names it (id, or any spelling of its name): its runs whatever
    # spelling they were recorded under; an unknown brand has none
    wanted = None if brand is None else crud.get_brand(session, tenant=tenant, ref=brand)
    overall: list[tuple[bool, bool]] = []
    by_brand: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    by_signal: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    disagreements: list[Disagreement] = []
    used: Counter[str] = Counter()
    for (run_id, sha), label in sorted(labels.items()):
        attempt = session.get(AttemptRow, label.attempt_id) if label.attempt_id else None
        if attempt is None:
            attempt = session.scalar(
                select(AttemptRow)
                .where(AttemptRow.run_id == run_id, AttemptRow.artifact_sha256 == sha)
                .order_by(AttemptRow.id)
            )
        run = session.get(RunRow, run_id)
        if attempt is None or run is None or run.tenant != tenant:
            continue
        people = label.people
        if brand is not None and (wanted is None or run.brand_id != wanted.id):
            continue
        rule = rule_accepts(attempt, policy)
        overall.append((rule, people))
        by_brand[run.brand_name].append((rule, people))
        used[label.source] += 1
        signals: dict[str, Any] = (attempt.scores or {}).get("signals") or {}
        for name, signal in signals.items():
            by_signal[name].append((bool(signal.get("passed")), people))
        if rule != people:
            disagreements.append(
                Disagreement(
                    sha256=sha,
                    run_id=run.id,
                    brand=run.brand_name,
                    rule_accepts=rule,
                    people_accept=people,
                    composite=attempt.composite,
                    failed_signals=sorted(n for n, s in signals.items() if not s.get("passed")),
                    notes=label.notes,
                )
            )
    return AgreementReport(
        tenant=tenant,
        brand=brand,
        overall=_figure(overall),
        by_brand={b: _figure(p) for b, p in sorted(by_brand.items())},
        by_signal={s: _figure(p) for s, p in sorted(by_signal.items())},
        disagreements=disagreements,
        sources={"rubric": used["rubric"], "run_review": used["run_review"]},
    )
