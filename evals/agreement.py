"""Judge agreement: how often the automatic acceptance rule agrees with human reviewers, per
signal and per brand, with the disagreements listed, so a team can see whether its thresholds
match its taste.

Human labels are the reviewers' rubric verdicts (``usable`` yes/no; several reviewers of one
image: the majority, a tie is no label), and a run review's verdict on the images it held back
(approve: the delivered images are usable; reject: the images the rule had accepted are not).
The rule's verdict is re-computed from each image's stored scores with the agent's acceptance
rule (every signal passes, when the policy asks for that, and the composite reaches its bar);
a signal's verdict is whether it passed. Agreement is the share of labelled images where rule
and people say the same; Cohen's kappa corrects it for chance. No labelled image: not measured.
"""

from __future__ import annotations

from collections import Counter, defaultdict
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


def _labels(
    session: Session, tenant: str
) -> tuple[dict[str, bool], dict[str, list[str]], dict[str, str]]:
    """sha256 -> people's verdict, their notes, and where the label came from."""
    votes: dict[str, list[bool]] = defaultdict(list)
    notes: dict[str, list[str]] = defaultdict(list)
    for rating in session.scalars(select(ImageRatingRow).where(ImageRatingRow.tenant == tenant)):
        votes[rating.sha256].append(rating.usable)
        if rating.note:
            notes[rating.sha256].append(f"{rating.principal}: {rating.note}")
    labels: dict[str, bool] = {}
    source: dict[str, str] = {}
    for sha, ballot in votes.items():
        yes = sum(ballot)
        if yes * 2 != len(ballot):
            labels[sha], source[sha] = yes * 2 > len(ballot), "rubric"
    policy = load_agent_policy()
    reviews = session.scalars(
        select(ReviewDecisionRow)
        .where(ReviewDecisionRow.tenant == tenant)
        .order_by(ReviewDecisionRow.id)
    )
    for review in reviews:
        run = session.get(RunRow, review.run_id)
        if run is None or run.tenant != tenant:
            continue
        if review.decision == "approve":
            held = [str(i["sha256"]) for i in (run.result or {}).get("images", [])]
        else:
            attempts = session.scalars(
                select(AttemptRow).where(
                    AttemptRow.run_id == run.id, AttemptRow.outcome == "rejected"
                )
            )
            held = [
                a.artifact_sha256 for a in attempts if a.artifact_sha256 and rule_accepts(a, policy)
            ]
        for sha in held:
            if sha not in labels:  # a rubric verdict on the image itself wins
                labels[sha], source[sha] = review.decision == "approve", "run_review"
                if review.note:
                    notes[sha].append(f"{review.actor} (run review): {review.note}")
    return labels, notes, source


def judge_agreement(
    session: Session, *, tenant: str, brand: str | None = None, policy: AgentPolicy | None = None
) -> AgreementReport:
    """The tenant's agreement figures (one brand's, when ``brand`` is given)."""
    policy = policy or load_agent_policy()
    labels, notes, source = _labels(session, tenant)
    # the brand as the registry names it (id, or any spelling of its name): its runs whatever
    # spelling they were recorded under; an unknown brand has none
    wanted = None if brand is None else crud.get_brand(session, tenant=tenant, ref=brand)
    overall: list[tuple[bool, bool]] = []
    by_brand: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    by_signal: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    disagreements: list[Disagreement] = []
    used: Counter[str] = Counter()
    for sha, people in sorted(labels.items()):
        artifact = session.scalar(
            select(ArtifactRow).where(ArtifactRow.tenant == tenant, ArtifactRow.sha256 == sha)
        )
        attempt_id = artifact.attempt_id if artifact is not None else None
        attempt = session.get(AttemptRow, attempt_id) if attempt_id else None
        if attempt is None:
            attempt = session.scalar(select(AttemptRow).where(AttemptRow.artifact_sha256 == sha))
        run = session.get(RunRow, attempt.run_id) if attempt is not None else None
        if attempt is None or run is None or run.tenant != tenant:
            continue
        if brand is not None and (wanted is None or run.brand_id != wanted.id):
            continue
        rule = rule_accepts(attempt, policy)
        overall.append((rule, people))
        by_brand[run.brand_name].append((rule, people))
        used[source[sha]] += 1
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
                    notes=notes.get(sha, []),
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
