"""One data dir's embedded Chroma used by several processes at once, and a damaged one.

Chroma's embedded client keeps each index in memory and writes all of it back on a flush, so
two processes writing one directory used to overwrite each other's vectors: every later
filtered recall of the brand failed with "Error finding id" (tester's report, defect 1). The
processes here are real (``brandloop`` CLIs, Python interpreters); the damage is made as a
stale writer made it, by putting an older index back under newer records.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from brandloop.agent.runner import open_memory
from brandloop.api.cli import main
from brandloop.memory import MiniLMEmbeddingFunction, make_chroma_client
from brandloop.memory.store import campaign_collection_name, collection_name
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.agent.helpers import add_acme
from tests.memory.old_layout import old_prompt, write_old_layout

ROOT = Path(__file__).resolve().parents[2]
ACME = str(ROOT / "examples/brands/acme-coffee.yaml")
BRANDLOOP = [sys.executable, "-c", "from brandloop.api.cli import main; main()"]

CAMPAIGN = f"""
name: shared-fall
brand: {ACME}
budget_usd: 2.0
seed: 7
defaults: {{formats: ["128x128"], count: 1, budget_usd: 0.4}}
assets:
  - {{id: hero, brief: "a steaming coffee cup on a wooden table, autumn leaves"}}
  - {{id: square, brief: "a coffee cup with a cinnamon pastry"}}
  - {{id: story, brief: "latte art in a coffee cup, warm light"}}
"""


def _env(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANDLOOP_")}
    env.update(
        BRANDLOOP_DATA_DIR=str(data_dir),
        BRANDLOOP_PROCEDURAL_ACCENT_CHANCE="0",
        PYTHONPATH=str(ROOT),
        HF_HUB_OFFLINE="1",
    )
    if database_url is not None:
        env["BRANDLOOP_DATABASE_URL"] = database_url
    return env


def _sound(chroma_dir: Path) -> dict[str, int]:
    """Records per collection, read through a fresh client with their vectors: a collection
    whose index lost records fails here as it did in the tester's runs."""
    client = make_chroma_client(Settings(chroma_path=chroma_dir))
    try:
        counts = {}
        for collection in client.list_collections():
            found = collection.get(include=["embeddings"])
            assert len(found["ids"]) == collection.count()
            counts[collection.name] = collection.count()
        return counts
    finally:
        client.close()  # type: ignore[attr-defined]


@pytest.mark.slow
def test_two_campaign_runs_at_once_on_one_data_dir_both_finish_and_memory_stays_sound(
    tmp_path: Path, database_url: str | None, seed: int
) -> None:
    """The tester's repro: a warm-up run, then two `campaign run`s of one campaign at once
    (both crashed, every time, and the campaign stayed broken)."""
    data_dir = tmp_path / "data"
    env = _env(data_dir, database_url)
    warm = subprocess.run(
        [*BRANDLOOP, "generate", "warm-up", "--brand", ACME, "--seed", str(seed), "--size",
         "128x128", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert warm.returncode == 0, warm.stderr
    campaign = tmp_path / "campaign.yaml"
    campaign.write_text(CAMPAIGN)
    command = [*BRANDLOOP, "campaign", "run", str(campaign), "--campaign-id", "shared", "--json"]
    both = [
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=600) for process in both]
    for process, (out, err) in zip(both, outputs, strict=True):
        assert process.returncode == 0, err.strip().splitlines()[-1:]
        assert json.loads(out)["campaign_id"] == "shared"
    counts = _sound(data_dir / "chroma")
    assert sum(counts.values()) >= 2  # the warm-up's prompt and descriptor at least
    again = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )  # the campaign alone afterwards: it used to fail the same way for good
    assert again.returncode == 0, again.stderr.strip().splitlines()[-1:]
    _sound(data_dir / "chroma")


WRITER = """
import sys
from pathlib import Path
from brandloop.agent.runner import open_memory
from brandloop.settings import Settings
memory = open_memory(Settings(data_dir=Path(sys.argv[1])))
tag = sys.argv[2]
for i in range(int(sys.argv[3])):
    memory.remember_prompt(
        tenant="acme_co", brand="brand_1", prompt=f"{tag} coffee cup number {i}", model="m",
        seed=i, template="t", run_id=f"{tag}-{i}", campaign_id=tag, scores={"composite": 0.5},
    )
    memory.recall(tenant="acme_co", brand="brand_1", query="a coffee cup", campaign_id=tag)
"""


def test_processes_writing_one_memory_at_once_keep_every_record_recallable(
    tmp_path: Path,
) -> None:
    """Three interpreters remember and recall through the memory every entry point opens;
    afterwards each one's prompts are all recalled by their campaign (a filtered query, the
    one a lost vector breaks)."""
    writes = 20
    tags = ["c1", "c2", "c3"]
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(WRITER))
    env = _env(tmp_path / "data", None)
    writers = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "data"), tag, str(writes)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in tags
    ]
    errors = [process.communicate(timeout=300)[1] for process in writers]
    assert [p.returncode for p in writers] == [0, 0, 0], [e.splitlines()[-1:] for e in errors]
    prompts = collection_name("acme_co", "brand_1", "prompt")
    assert _sound(tmp_path / "data" / "chroma") == {
        prompts: len(tags) * writes,
        **{campaign_collection_name("acme_co", "brand_1", tag, "prompt"): writes for tag in tags},
    }
    memory = open_memory(Settings(data_dir=tmp_path / "data"))
    for tag in tags:
        hits = memory.recall(
            tenant="acme_co", brand="brand_1", query="a coffee cup", k=writes, campaign_id=tag
        )
        assert sorted(h.metadata["run_id"] for h in hits) == sorted(
            f"{tag}-{i}" for i in range(writes)
        )


def _damage(settings: Settings, brand_id: str) -> None:
    """Leave the brand's prompt index as a writer with a stale copy left it: the SQLite side
    holds three prompts (two of campaign ``fall``), the index only the first. Written in the
    layout of the time (before 2026-12-05's lock, so before campaign collections: a campaign
    read of it filters the brand's collection, the query a lost vector breaks)."""
    ef = MiniLMEmbeddingFunction()

    def remember(i: int, campaign: str | None) -> None:
        client = make_chroma_client(settings)
        try:
            record = old_prompt(i, campaign, f"a coffee cup on a table, take {i}")
            write_old_layout(
                client, ef, tenant="default", brand=brand_id, kind="prompt", records=[record]
            )
        finally:
            client.close()  # type: ignore[attr-defined]

    remember(0, None)
    chroma = settings.resolved_chroma_path
    (index,) = [p for p in chroma.iterdir() if p.is_dir()]
    shutil.copytree(index, chroma.parent / "stale-index")
    remember(1, "fall")
    remember(2, "fall")
    shutil.rmtree(index)
    shutil.copytree(chroma.parent / "stale-index", index)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


def test_a_damaged_memory_degrades_to_none_for_the_run_and_memory_repair_rebuilds_it(
    capsys: pytest.CaptureFixture[str], settings: Settings, db: Database, seed: int
) -> None:
    add_acme(settings, db)
    with db.session() as session:
        row = crud.get_brand(session, tenant="default", ref="Acme Coffee")
        assert row is not None
        brand_id = row.id
    _damage(settings, brand_id)
    run = ["generate", "a coffee cup, autumn", "--brand", "Acme Coffee", "--campaign", "fall",
           "--size", "128x128", "--seed", str(seed), "--json"]  # fmt: skip

    code, out, err = _cli(capsys, *run)
    assert code == 0, err
    result = json.loads(out)
    (recall,) = [d for d in result["decisions"] if d["node"] == "recall"]
    assert recall["action"] == "unavailable"
    assert "\n" not in recall["reason"]
    assert "damaged" in recall["reason"]
    assert f"brandloop memory repair --brand {brand_id}" in recall["reason"]

    code, out, err = _cli(capsys, "memory", "repair", "--brand", "Acme Coffee", "--json")
    assert code == 0, err
    rebuilt = json.loads(out)
    assert rebuilt["brand"] == "acme-coffee"
    assert rebuilt["rebuilt"]["prompt"] == 3 + len(result["images"])
    _sound(settings.resolved_chroma_path)
    hits = open_memory(settings).recall(
        tenant="default", brand=brand_id, query="a coffee cup", k=10, campaign_id="fall"
    )
    assert {"run_old1", "run_old2"} <= {str(h.metadata["run_id"]) for h in hits}

    code, out, err = _cli(capsys, *run[:-3], "--seed", str(seed ^ 1), "--json")
    assert code == 0, err
    (recall,) = [d for d in json.loads(out)["decisions"] if d["node"] == "recall"]
    assert recall["action"] == "recalled"

    code, out, _ = _cli(capsys, "memory", "repair", "--brand", "Acme Coffee")
    assert code == 0 and out.startswith("rebuilt acme-coffee's memory:")  # again: a no-op


def _in_another_process(data_dir: Path, code: str) -> None:
    script = textwrap.dedent(
        """
        from brandloop.agent.runner import open_memory
        from brandloop.settings import Settings
        memory = open_memory(Settings())
        """
    ) + textwrap.dedent(code)
    subprocess.run(
        [sys.executable, "-c", script], env=_env(data_dir, None), check=True, timeout=120
    )


def test_recall_looks_collections_up_again_after_another_process_writes(tmp_path: Path) -> None:
    """A process keeps the collections it looked up (or found missing) between its reads,
    and only while no process writes: a note another process adds is recalled at once, and a
    repair there, which drops each collection and gives its name to a new one, leaves this
    process querying the new one, not failing on the dropped one."""
    data_dir = tmp_path / "data"
    memory = open_memory(Settings(data_dir=data_dir))
    pair = {"tenant": "acme_co", "brand": "brand_1"}
    assert memory.recall(**pair, query="a coffee cup") == []
    assert memory.recall(**pair, query="a coffee cup") == []  # found missing, twice
    _in_another_process(
        data_dir, 'memory.add_note(tenant="acme_co", brand="brand_1", text="always warm light")'
    )
    assert [hit.text for hit in memory.recall(**pair, query="a coffee cup")] == [
        "always warm light"
    ]
    _in_another_process(data_dir, 'memory.repair(tenant="acme_co", brand="brand_1")')
    assert [hit.text for hit in memory.recall(**pair, query="a coffee cup")] == [
        "always warm light"
    ]
    _in_another_process(
        data_dir,
        """
        (note,) = memory.notes(tenant="acme_co", brand="brand_1")
        memory.forget(tenant="acme_co", brand="brand_1", record_id=note.id)
        """,
    )
    assert memory.recall(**pair, query="a coffee cup") == []
