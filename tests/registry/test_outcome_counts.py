"""The planner's outcome counts, kept as attempts are recorded, equal the aggregate over the
attempts themselves: after concurrent runs moving attempts between outcomes, and after the
migration fills them from attempts recorded before it. On SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from alembic import command

from brandloop.agent.bandit import arm_stats
from brandloop.domain import Attempt, BrandKit, Candidate, PaletteColour
from brandloop.registry import crud
from brandloop.registry.db import Database, alembic_config

KIT = BrandKit(name="Acme Coffee", palette=[PaletteColour(hex="#6b3e26", name="roast")])
AGGREGATE = (
    "SELECT r.brand_id, a.template_ref, a.model, a.outcome, COUNT(*), SUM(a.latency_ms) "
    "FROM attempts a JOIN runs r ON r.id = a.run_id "
    "GROUP BY r.brand_id, a.template_ref, a.model, a.outcome"
)
COUNTS = (  # summed over quality settings: the attempts here name none
    "SELECT brand_id, template_ref, model, outcome, SUM(attempts), SUM(latency_ms_total) "
    "FROM outcome_counts WHERE attempts > 0 GROUP BY brand_id, template_ref, model, outcome"
)


def _rows(conn: sa.Connection, query: str) -> set[tuple[object, ...]]:
    return {(*r[:4], int(r[4]), round(float(r[5]), 3)) for r in conn.execute(sa.text(query))}


def attempt(run: int, i: int, outcome: str, latency: float) -> Attempt:
    return Attempt(
        id=f"att_{run}_{i}",
        idempotency_key=f"key_{run}_{i}",
        candidate=Candidate(
            id=f"c_{run}_{i}",
            template=f"t@{1 + i % 2}",
            prompt="p",
            model=("procedural/draft", "procedural/studio")[i % 3 % 2],
            seed=i,
            width=64,
            height=64,
        ),
        outcome=outcome,  # type: ignore[arg-type]
        latency_ms=latency,
    )


def test_counts_follow_concurrent_runs_exactly(any_db: Database) -> None:
    with any_db.session() as session:
        brand_id = crud.upsert_brand(session, tenant="acme_co", kit=KIT).id

    def one_run(run: int) -> None:
        with any_db.session() as session:
            crud.create_run(
                session, run_id=f"run_{run}", tenant="acme_co", brand_id=brand_id,
                brand_name=KIT.name, brief="b", request={},
            )  # fmt: skip
        for i in range(6):  # pending, then its outcome, as the loop records them
            with any_db.session() as session:
                crud.upsert_attempt(
                    session, run_id=f"run_{run}", attempt=attempt(run, i, "pending", 0)
                )
            final = ("accepted", "rejected", "error")[(run + i) % 3]
            with any_db.session() as session:
                crud.upsert_attempt(
                    session, run_id=f"run_{run}", attempt=attempt(run, i, final, 10.0 + i)
                )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one_run, range(16)))
    with any_db.engine.connect() as conn:
        aggregate, counts = _rows(conn, AGGREGATE), _rows(conn, COUNTS)
    assert counts == aggregate
    assert sum(int(r[4]) for r in counts) == 16 * 6
    with any_db.session() as session:
        stats = arm_stats(session, brand_id=brand_id, template_ref="t@1")
    assert sum(s.successes + s.failures for s in stats.values()) == 16 * 3


def test_the_migration_counts_attempts_recorded_before_it(empty_url: str) -> None:
    _migrate_and_compare(empty_url)


def _migrate_and_compare(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0202")
        db = Database(url, migrate_on_first_use=False)
        with db.engine.begin() as conn:  # attempts recorded before the counts existed
            conn.execute(sa.text(
                "INSERT INTO runs (id, tenant, brand_id, brand_name, brief, request, status, "
                "reason, template_ref, cost_usd, attempt_count, accepted_count, created_at) "
                "VALUES ('r1', 't', 'brand_1', 'b', 'b', '{}', 'succeeded', '', 't@1', 0, 2, 1, "
                "'2026-11-30 10:00:00')"
            ))  # fmt: skip
            for i, outcome in enumerate(("accepted", "rejected", "accepted")):
                conn.execute(sa.text(
                    "INSERT INTO attempts (id, run_id, iteration, model, template_ref, prompt, "
                    "negative_prompt, seed_requested, width, height, params, outcome, "
                    "idempotency_key, tries, cost_usd, latency_ms, cache_hit, created_at) VALUES "
                    f"('a{i}', 'r1', 0, 'procedural/draft', 't@1', 'p', '', {i}, 8, 8, '{{}}', "
                    f"'{outcome}', 'k{i}', 1, 0, {100 + i}, false, '2026-11-30 10:00:00')"
                ))  # fmt: skip
        db.upgrade()
        with db.engine.connect() as conn:
            assert _rows(conn, COUNTS) == _rows(conn, AGGREGATE)
            assert len(_rows(conn, COUNTS)) == 2
        db.dispose()
    finally:
        engine.dispose()


def test_counts_keep_the_quality_setting_each_attempt_asked_for(any_db: Database) -> None:
    with any_db.session() as session:
        brand_id = crud.upsert_brand(session, tenant="acme_co", kit=KIT).id
        crud.create_run(
            session, run_id="run_q", tenant="acme_co", brand_id=brand_id,
            brand_name=KIT.name, brief="b", request={},
        )  # fmt: skip
    for i, (quality, outcome) in enumerate(
        [("low", "rejected"), ("low", "rejected"), ("high", "accepted"), (None, "accepted")]
    ):
        base = attempt(0, i, "pending", 0)
        cand = base.candidate.model_copy(
            update={
                "model": "sim/tiered",
                "template": "t@1",
                "params": {"quality": quality} if quality else {},
            }
        )
        with any_db.session() as session:
            crud.upsert_attempt(
                session, run_id="run_q", attempt=base.model_copy(update={"candidate": cand})
            )
        with any_db.session() as session:
            crud.upsert_attempt(
                session,
                run_id="run_q",
                attempt=base.model_copy(update={"candidate": cand, "outcome": outcome}),
            )
    with any_db.session() as session:
        stats = arm_stats(session, brand_id=brand_id, template_ref="t@1")
    assert {k: (s.successes, s.failures) for k, s in stats.items()} == {
        "sim/tiered@low": (0, 2),
        "sim/tiered@high": (1, 0),
        "sim/tiered": (1, 0),
    }
