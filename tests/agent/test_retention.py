"""Retention: a finished run keeps only its newest checkpoints, a run waiting for review keeps
them all, and ``brandloop gc`` deletes old images nothing needs - never an accepted image, the
raw image its receipt names, nor an image of a pending review."""

from __future__ import annotations

import io
import json
import re
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image

from brandloop.agent.checkpoints import checkpointer_for
from brandloop.agent.graph import compile_graph
from brandloop.agent.retention import collect_garbage, prune_finished_runs
from brandloop.agent.runner import resume_run, review_run, run_generation
from brandloop.api.cli import main
from brandloop.artifacts import ArtifactStore
from brandloop.domain import Attempt, Candidate, GenerationRequest, utcnow
from brandloop.policies.agent import AgentPolicy, ReviewPolicy
from brandloop.registry import crud
from brandloop.registry.artifact_owners import keep_artifact
from brandloop.registry.db import Database
from brandloop.registry.models import ArtifactRow, RunRow
from brandloop.registry.models_agent import CacheEntryRow
from brandloop.registry.models_studio import ImageRatingRow
from brandloop.settings import Settings, get_settings
from tests.agent.helpers import AUTUMN, CountingProvider, add_acme
from tests.api.test_cli import run_cli


def checkpoint_count(settings: Settings, run_id: str) -> int:
    """Checkpoints saved for ``run_id`` in this deployment's checkpointer."""
    if settings.resolved_database_url.startswith("postgresql"):
        db = Database(settings.resolved_database_url)
        with db.engine.connect() as conn:
            query = sa.text("SELECT count(*) FROM checkpoints WHERE thread_id = :t")
            found = int(conn.execute(query, {"t": run_id}).scalar_one())
        db.dispose()
        return found
    with sqlite3.connect(settings.checkpoints_path) as conn:
        row = conn.execute("SELECT count(*) FROM checkpoints WHERE thread_id = ?", (run_id,))
        return int(row.fetchone()[0])


def db_shas(db: Database) -> list[str]:
    with db.session() as session:
        return list(session.scalars(sa.select(ArtifactRow.sha256)))


async def final_state(settings: Settings, run_id: str) -> dict:
    async with checkpointer_for(settings.resolved_database_url, settings.checkpoints_path) as saver:
        snapshot = await compile_graph(saver).aget_state({"configurable": {"thread_id": run_id}})
    return dict(snapshot.values)


def request(brand: str, seed: int) -> GenerationRequest:
    return GenerationRequest(brief=AUTUMN, brand=brand, count=2, size="128x128", seed=seed)


@pytest.mark.parametrize("keep", [1, 3, 0])
async def test_a_finished_run_keeps_its_newest_checkpoints(
    settings: Settings, seed: int, keep: int, monkeypatch: pytest.MonkeyPatch, db: Database
) -> None:
    monkeypatch.setenv("BRANDLOOP_CHECKPOINT_KEEP", str(keep))
    get_settings.cache_clear()
    settings = get_settings()
    brand = add_acme(settings, db)
    result = await run_generation(
        request(brand, seed),
        settings=settings,
        db=db,
        providers={"procedural": CountingProvider()},
        use_memory=False,
    )
    assert result.status in {"succeeded", "partial", "failed"}
    assert checkpoint_count(settings, result.run_id) == keep
    if keep:
        state = await final_state(settings, result.run_id)
        assert state["status"] == result.status  # the kept checkpoint is the final state
        assert len(state["attempts"]) == result.attempts


@pytest.mark.parametrize("keep", [1, 0])
async def test_resuming_a_run_finished_before_its_pruning_prunes_it(
    settings: Settings, seed: int, keep: int, monkeypatch: pytest.MonkeyPatch, db: Database
) -> None:
    """A worker killed after its run finished but before it pruned the run's checkpoints: the
    worker that takes the job over finds the run finished and prunes what it left (the
    scaled-out stack test once found one run with all 11 checkpoints kept)."""
    monkeypatch.setenv("BRANDLOOP_CHECKPOINT_KEEP", "1000")  # the first process prunes nothing
    get_settings.cache_clear()
    brand = add_acme(get_settings(), db)
    result = await run_generation(
        request(brand, seed),
        settings=get_settings(),
        db=db,
        providers={"procedural": CountingProvider()},
        use_memory=False,
    )
    left = checkpoint_count(get_settings(), result.run_id)
    assert left > 1
    monkeypatch.setenv("BRANDLOOP_CHECKPOINT_KEEP", str(keep))
    get_settings.cache_clear()
    again = await resume_run(
        result.run_id, settings=get_settings(), db=db, providers={"procedural": CountingProvider()}
    )
    assert again == result
    assert checkpoint_count(get_settings(), result.run_id) == keep


async def test_by_default_finished_runs_keep_no_checkpoints(
    settings: Settings, db: Database
) -> None:
    """Run after run, the checkpoint store holds nothing of the finished ones."""
    brand = add_acme(settings, db)
    runs = [
        await run_generation(
            GenerationRequest(brief=AUTUMN, brand=brand, count=1, size="64x64"),
            settings=settings,
            db=db,
            providers={"procedural": CountingProvider()},
            use_memory=False,
        )
        for _ in range(4)
    ]
    assert [checkpoint_count(settings, r.run_id) for r in runs] == [0, 0, 0, 0]
    assert all(r.status in {"succeeded", "partial", "failed"} for r in runs)


async def test_a_run_waiting_for_review_keeps_every_checkpoint_and_still_resumes(
    settings: Settings, seed: int, db: Database
) -> None:
    brand = add_acme(settings, db)
    provider = CountingProvider()
    waiting = await run_generation(
        GenerationRequest(brief=AUTUMN, brand=brand, count=1, size="128x128", seed=seed),
        settings=settings,
        db=db,
        providers={"procedural": provider},
        use_memory=False,
        policy=AgentPolicy(review=ReviewPolicy(mode="always")),
    )
    assert waiting.status == "awaiting_review"
    saved = checkpoint_count(settings, waiting.run_id)
    assert saved > 1
    assert await prune_finished_runs(settings, db, keep=0) == 0  # gc leaves a pending review alone
    report = await collect_garbage(
        settings, db, older_than_days=1, now=utcnow() + timedelta(days=30)
    )
    assert report.artifacts == 0 and report.kept_in_use >= 1
    assert checkpoint_count(settings, waiting.run_id) == saved
    done = await review_run(
        waiting.run_id,
        settings=settings,
        db=db,
        decision="approve",
        actor="ann",
        providers={"procedural": provider},
        use_memory=False,
    )
    assert done.status == "succeeded" and done.images
    assert checkpoint_count(settings, waiting.run_id) == 0  # finished now


def _attempt(run_id: str, index: int, sha: str | None, outcome: str) -> Attempt:
    cand = Candidate(
        id=f"{run_id}-c{index}", template="t@1", prompt="p", model="procedural/draft",
        seed=index, width=8, height=8,
    )  # fmt: skip
    return Attempt(
        id=f"{run_id}-a{index}",
        candidate=cand,
        outcome=outcome,  # type: ignore[arg-type]
        idempotency_key=f"{run_id}-k{index}",
        artifact_sha256=sha,
    )


def _image(store: ArtifactStore, colour: tuple[int, int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    sha, _ = store.put(buffer.getvalue())
    return sha


def _record(
    settings: Settings, db: Database, *, tenant: str, run_id: str, status: str, images: dict
) -> None:
    """A run of ``tenant`` with one attempt per image: ``images`` maps sha -> (outcome, receipt)."""
    store = ArtifactStore(settings.artifacts_dir)
    with db.session() as session:
        crud.create_run(
            session, run_id=run_id, tenant=tenant, brand_id=None, brand_name="b", brief="b",
            request={},
        )  # fmt: skip
        session.get(RunRow, run_id).status = status  # type: ignore[union-attr]
        for index, (sha, (outcome, receipt)) in enumerate(images.items()):
            crud.upsert_attempt(
                session, run_id=run_id, attempt=_attempt(run_id, index, sha, outcome)
            )
            keep_artifact(
                session, store, store.get(sha), tenant=tenant, width=8, height=8, run_id=run_id,
                attempt_id=f"{run_id}-a{index}", receipt=receipt,
            )  # fmt: skip


async def test_gc_deletes_only_old_images_nothing_needs(settings: Settings, db: Database) -> None:
    store = ArtifactStore(settings.artifacts_dir)
    rejected, raw, accepted, pending, cached, rated = (
        _image(store, c)
        for c in [(200, 0, 0), (0, 200, 0), (0, 0, 200), (200, 200, 0), (0, 200, 200), (9, 9, 9)]
    )
    receipt = {"run_id": "r1", "source_sha256": raw}
    _record(
        settings, db, tenant="acme", run_id="r1", status="succeeded",
        images={rejected: ("rejected", None), raw: ("accepted", None),
                accepted: ("accepted", receipt), cached: ("rejected", None),
                rated: ("rejected", None)},
    )  # fmt: skip
    _record(
        settings, db, tenant="acme", run_id="r2", status="awaiting_review",
        images={pending: ("rejected", None)},
    )  # fmt: skip
    later = utcnow() + timedelta(days=10)
    with db.session() as session:  # a reviewer found the rejected candidate usable after all
        session.add(
            ImageRatingRow(
                tenant="acme", run_id="r1", sha256=rated, principal="ann", on_brand=4, usable=True
            )
        )
        for key, sha, hit in (
            ("old-entry", rejected, None),
            ("hot-entry", cached, later - timedelta(days=1)),
        ):
            session.add(
                CacheEntryRow(
                    key=key, tenant="acme", provider="procedural", model="procedural/draft",
                    model_version="1", template_ref="t@1", artifact_sha256=sha,
                    cost_usd=0.01, hits=1, last_hit_at=hit,
                )
            )  # fmt: skip

    dry = await collect_garbage(settings, db, older_than_days=5, now=later, dry_run=True)
    assert (dry.artifacts, dry.cache_entries) == (1, 1)
    assert store.exists(rejected)

    # within the age: nothing goes
    young = await collect_garbage(settings, db, older_than_days=30, now=later)
    assert young.artifacts == 0 and store.exists(rejected)

    report = await collect_garbage(settings, db, older_than_days=5, now=later)
    assert (report.artifacts, report.files, report.cache_entries) == (1, 1, 1)
    # the receipt's raw image, the pending review, the cache hit, the rated image
    assert report.kept_in_use == 4
    assert not store.exists(rejected)
    for needed in (raw, accepted, pending, cached, rated):
        assert store.exists(needed)
    with db.session() as session:
        left = set(session.scalars(sa.select(ArtifactRow.sha256)))
        assert left == {raw, accepted, pending, cached, rated}
        assert set(session.scalars(sa.select(CacheEntryRow.key))) == {"hot-entry"}


async def test_gc_follows_each_tenants_age_and_leaves_others_alone(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, db: Database
) -> None:
    monkeypatch.setenv("BRANDLOOP_ARTIFACT_RETENTION_DAYS", json.dumps({"short": 2}))
    get_settings.cache_clear()
    settings = get_settings()
    store = ArtifactStore(settings.artifacts_dir)
    first, second = _image(store, (10, 10, 10)), _image(store, (20, 20, 20))
    _record(settings, db, tenant="short", run_id="s1", status="failed",
            images={first: ("rejected", None)})  # fmt: skip
    _record(settings, db, tenant="Short", run_id="s2", status="failed",
            images={second: ("rejected", None)})  # fmt: skip
    report = await collect_garbage(settings, db, now=utcnow() + timedelta(days=3))
    assert report.tenants == {"short": 2}  # "Short" is another tenant, with no age set
    assert not store.exists(first) and store.exists(second)


def test_gc_from_the_cli(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, seed: int, db: Database
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(
            ["generate", AUTUMN, "--brand", "examples/brands/acme-coffee.yaml", "--n", "2",
             "--size", "64x64", "--seed", str(seed), "--no-memory", "--json",
             "--out", str(tmp_path / "out")]
        )  # fmt: skip
    assert exc.value.code == 0
    result = json.loads(capsys.readouterr().out)
    with pytest.raises(SystemExit) as exc:
        main(["gc", "--older-than", "0.000001", "--json"])
    assert exc.value.code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tenants"] == {"default": 0.000001}
    # the run kept no checkpoint as it ended (BRANDLOOP_CHECKPOINT_KEEP=0): none to prune
    assert checkpoint_count(settings, result["run_id"]) == 0
    assert report["checkpoints_pruned"] == 0
    store = ArtifactStore(settings.artifacts_dir)
    for image in result["images"]:  # accepted images and their raw sources stay
        assert store.exists(image["sha256"])
    with db.session() as session:
        kept = session.scalars(sa.select(ArtifactRow.sha256)).all()
    assert len(kept) >= len(result["images"])
    assert all(store.exists(sha) for sha in kept)


_GC_LINE = re.compile(
    r"(?P<delete>would delete|deleted) (?P<artifacts>\d+) image\(s\) \((?P<files>\d+) file\(s\), "
    r"(?P<mb>[\d.]+) MB\), (?P<cache_entries>\d+) cache entr(?:y|ies); "
    r"kept (?P<kept_in_use>\d+) still needed; "
    r"(?P<prune>would prune|pruned) the checkpoints of (?P<checkpoints_pruned>\d+) finished run\(s\)$"
)
_NUMBERS = ("checkpoints_pruned", "artifacts", "files", "cache_entries", "kept_in_use")


def _gc(capsys: pytest.CaptureFixture[str], *argv: str, as_json: bool) -> dict[str, object]:
    """``brandloop gc --older-than 0.000001 ARGV``: its numbers, from --json or from the text."""
    code, out, err = run_cli(
        capsys, "gc", "--older-than", "0.000001", *argv, *(["--json"] if as_json else [])
    )
    assert code == 0, err
    if as_json:
        report: dict[str, object] = json.loads(out)
        return {key: report[key] for key in (*_NUMBERS, "dry_run")}
    dry = "--dry-run" in argv
    lines = out.strip().splitlines()
    assert lines[0] == "dry run: deletes nothing" if dry else "dry run" not in out
    assert ("deleted" not in out and "pruned" not in out) if dry else "would" not in out
    found = _GC_LINE.match(lines[-1])
    assert found is not None, lines[-1]
    assert (found["delete"], found["prune"]) == (
        ("would delete", "would prune") if dry else ("deleted", "pruned")
    )
    return {**{key: int(found[key]) for key in _NUMBERS}, "dry_run": dry}


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_gc_reports_what_it_deletes_and_a_dry_run_what_the_real_run_then_deletes(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    db: Database,
    as_json: bool,
) -> None:
    """A dry run's numbers are the next real run's (checkpoints, images, files, cache entries);
    a real run counts what it deleted, so one right after it reports 0 - it used to report
    every finished run as pruned on every call, and a dry run 0 files and 0 checkpoints."""
    monkeypatch.setenv("BRANDLOOP_CHECKPOINT_KEEP", "3")  # the run keeps 3 as it ends ...
    get_settings.cache_clear()
    code, out, err = run_cli(
        capsys, "generate", AUTUMN, "--brand", "examples/brands/acme-coffee.yaml", "--n", "2",
        "--size", "128x128", "--seed", "21", "--no-memory", "--json",
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    assert checkpoint_count(settings, run_id) == 3
    monkeypatch.delenv("BRANDLOOP_CHECKPOINT_KEEP")  # ... and gc applies the default, 0
    get_settings.cache_clear()
    store = ArtifactStore(settings.artifacts_dir)
    before = set(db_shas(db))
    time.sleep(0.2)  # older than --older-than 0.000001 (86 ms)

    dry = _gc(capsys, "--dry-run", as_json=as_json)
    assert dry["dry_run"] is True
    assert dry["checkpoints_pruned"] == 1
    assert isinstance(dry["artifacts"], int) and dry["artifacts"] >= 1  # rejected candidates
    assert dry["files"] == dry["artifacts"] and dry["cache_entries"] >= 1
    assert set(db_shas(db)) == before  # a dry run deletes nothing
    assert all(store.exists(sha) for sha in before)
    assert checkpoint_count(settings, run_id) == 3

    real = _gc(capsys, as_json=as_json)
    assert real == {**dry, "dry_run": False}
    assert checkpoint_count(settings, run_id) == 0
    after = set(db_shas(db))
    gone = before - after
    assert len(gone) == real["artifacts"] and not any(store.exists(sha) for sha in gone)
    assert all(store.exists(sha) for sha in after)

    again = _gc(capsys, as_json=as_json)
    assert again == {**dry, "dry_run": False, "checkpoints_pruned": 0, "artifacts": 0,
                     "files": 0, "cache_entries": 0}  # fmt: skip
    assert _gc(capsys, "--dry-run", as_json=as_json) == {**again, "dry_run": True}


def test_gc_dry_run_counts_a_shared_file_as_the_real_run_deletes_it(
    capsys: pytest.CaptureFixture[str], settings: Settings, db: Database
) -> None:
    """A file goes with its last copy: two tenants' unneeded copies of one image delete it (one
    file), a copy another tenant still needs keeps it (no file) - on a dry run as on a real one."""
    store = ArtifactStore(settings.artifacts_dir)
    both_go, one_stays = _image(store, (1, 2, 3)), _image(store, (4, 5, 6))
    for tenant, run_id, status, images in (
        ("t1", "r1", "failed", {both_go: ("rejected", None)}),
        ("t2", "r2", "failed", {both_go: ("rejected", None)}),
        ("t3", "r3", "failed", {one_stays: ("rejected", None)}),
        ("t4", "r4", "succeeded", {one_stays: ("accepted", {"run_id": "r4"})}),
    ):
        _record(settings, db, tenant=tenant, run_id=run_id, status=status, images=images)
    time.sleep(0.2)
    dry = _gc(capsys, "--dry-run", as_json=True)
    assert (dry["artifacts"], dry["files"], dry["checkpoints_pruned"]) == (3, 1, 0)
    real = _gc(capsys, as_json=True)
    assert real == {**dry, "dry_run": False}
    assert not store.exists(both_go) and store.exists(one_stays)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["gc", "--older-than", "0"], "--older-than must be more than 0 days"),
        (["gc", "--older-than", "-3"], "--older-than must be more than 0 days"),
        (["gc", "--older-than", "soon"], "Invalid value for '--older-than'"),
        (["gc", "--tenant", " "], "Invalid value for '--tenant': tenant ' ' must be 1-64"),
        # a misspelt tenant collected nothing and said nothing (outside tester)
        (["gc", "--tenant", "acme-typo"], "tenant 'acme-typo' has no runs, images or keys"),
    ],
)
def test_gc_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], settings: Settings, argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("brandloop: error: ") and err.count("\n") == 1
    assert message in err


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"acme": 0}', "more than 0 days"),
        # each was taken: true as 1 day, "30" as 30 days, the later of two ages (outside tester)
        ('{"*": true}', "Input should be a valid number"),
        ('{"*": "30"}', "Input should be a valid number"),
        ('{"*": 30, "*": 1}', "'*' given more than once"),
        ('{"*": 30', "not valid JSON"),
    ],
)
def test_a_retention_age_must_be_a_positive_number_once_per_tenant(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv("BRANDLOOP_ARTIFACT_RETENTION_DAYS", value)
    get_settings.cache_clear()
    with pytest.raises(SystemExit) as exc:
        main(["gc", "--dry-run"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and err.count("\n") == 1, err
    assert "BRANDLOOP_ARTIFACT_RETENTION_DAYS" in err


def test_gc_of_one_tenant_prunes_only_its_own_runs_checkpoints(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--tenant`` is "only this tenant": another tenant's finished run keeps its checkpoints
    (they were pruned and reported as the named tenant's; outside tester, on PostgreSQL)."""
    monkeypatch.setenv("BRANDLOOP_CHECKPOINT_KEEP", "3")
    monkeypatch.setenv("BRANDLOOP_TENANT", "_")  # odd but legal
    get_settings.cache_clear()
    code, out, err = run_cli(
        capsys, "generate", AUTUMN, "--brand", "examples/brands/acme-coffee.yaml",
        "--size", "128x128", "--seed", "31", "--no-memory", "--json",
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    monkeypatch.delenv("BRANDLOOP_CHECKPOINT_KEEP")
    monkeypatch.delenv("BRANDLOOP_TENANT")
    get_settings.cache_clear()
    assert checkpoint_count(settings, run_id) == 3
    assert (
        run_cli(capsys, "keys", "create", "--tenant", "0", "--principal", "p", "--role", "viewer")[
            0
        ]
        == 0
    )
    other = _gc(capsys, "--tenant", "0", as_json=True)
    assert other["checkpoints_pruned"] == 0 and checkpoint_count(settings, run_id) == 3
    own = _gc(capsys, "--tenant", "_", as_json=True)
    assert own["checkpoints_pruned"] == 1 and checkpoint_count(settings, run_id) == 0
