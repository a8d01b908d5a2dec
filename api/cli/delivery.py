"""Delivering a run to an output folder: its accepted images and ``receipt.json``, as
``brandloop generate --out`` writes them, and by ``runs resume`` / ``review approve`` for a run
that generate did not finish (a signer that failed, a review, a stopped process).

The folder ``generate`` was given is remembered in the data dir (``<data_dir>/deliveries/
RUN.json``) from before the run starts until the run has finished: it is a path on this
machine, so it is kept where this machine's commands look, not in a registry other machines
share. A folder holds one run's export: a ``receipt.json`` of another run there is never
replaced without ``--force``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from brandloop.api.cli.common import check_output_folder, database, settings
from brandloop.artifacts import SUFFIXES, atomic_write
from brandloop.domain import RunResult
from brandloop.errors import BadInputError, ConflictError, present
from brandloop.registry import crud

RECEIPT_FILE = "receipt.json"
#: how the folder generate was given is named in messages when it is not given again
REMEMBERED = "--out (the folder generate was given)"

OutOption = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="folder for the PNGs and receipt.json (default: the one generate was given)",
    ),
]
ForceOption = Annotated[
    bool,
    typer.Option("--force", help="replace the receipt.json of another run the --out folder holds"),
]


def _record(run_id: str) -> Path:
    return settings().data_dir / "deliveries" / f"{run_id}.json"


def remember_folder(run_id: str, folder: Path) -> None:
    """Keep ``folder`` (made absolute) as where ``run_id`` is delivered, until it finishes."""
    record = _record(run_id)
    record.parent.mkdir(parents=True, exist_ok=True)
    document = {"run_id": run_id, "out": str(folder.absolute())}
    atomic_write(record, json.dumps(document).encode())


def remembered_folder(run_id: str) -> Path | None:
    """The folder generate was given for ``run_id``, while the run has not finished."""
    try:
        document = json.loads(_record(run_id).read_text())
    except (OSError, ValueError):  # none (a run the API made), or unreadable: none
        return None
    folder = document.get("out") if isinstance(document, dict) else None
    return Path(folder) if isinstance(folder, str) and folder else None


def settle_folder(result: RunResult) -> None:
    """Forget the remembered folder of a run that has finished (delivered there, or with
    nothing to deliver); a run waiting for review keeps it for its verdict."""
    if result.status != "awaiting_review":
        _record(result.run_id).unlink(missing_ok=True)


def _other_run(folder: Path, run_id: str) -> str | None:
    """Why ``folder`` may not take ``run_id``'s receipt.json: it holds another run's (or a
    receipt.json that is no run's); None when it may (none there yet, or ``run_id``'s own)."""
    receipt = folder / RECEIPT_FILE
    if not receipt.exists():
        return None
    if not receipt.is_file():
        raise BadInputError(f"{receipt} is not a file: {folder} cannot take a run's receipt")
    try:
        document = json.loads(receipt.read_bytes())
        owner = document["run"]["run_id"]
    except (OSError, ValueError, TypeError, KeyError):
        owner = None
    if owner == run_id:
        return None
    if isinstance(owner, str):
        return f"holds the export of run {owner} (its {RECEIPT_FILE})"
    return f"holds a {RECEIPT_FILE} that is not a brandloop run's"


def check_delivery_folder(folder: Path, run_id: str, *, option: str, force: bool) -> Path:
    """``folder`` if ``run_id`` can be delivered there: writable (as
    :func:`check_output_folder` checks it) and holding no other run's receipt.json unless
    ``force``. Else a :class:`BadInputError` naming ``option`` (exit 2), before anything is
    spent or stored."""
    check_output_folder(folder, option)
    problem = None if force else _other_run(folder, run_id)
    if problem is not None:
        raise ConflictError(
            f"{option} {folder} {problem}; give another folder, or --force to replace that "
            f"{RECEIPT_FILE}"
        )
    return folder


def write_outputs(
    result: RunResult, out_dir: Path, *, tenant: str, force: bool = False
) -> RunResult:
    """Copy the accepted images into ``out_dir`` and write the run receipt beside them; a run
    that accepted nothing writes nothing (its trace is in the registry: ``runs show``). An
    image whose bytes the tenant deleted has no file there: ``receipt.json`` lists it
    ``deleted``, with its receipt.

    Another run's receipt.json that came into the folder while this run worked is not
    replaced (without ``force``): the run is kept, and the error names the command that
    delivers it elsewhere."""
    if not result.images:
        return result
    problem = None if force else _other_run(out_dir, result.run_id)
    if problem is not None:
        raise ConflictError(
            f"--out {out_dir} {problem} now; run {result.run_id} is kept: `brandloop runs "
            f"resume {result.run_id} --out DIR` delivers it to another folder"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    images = []
    receipts: list[dict[str, Any]] = []
    with database().session() as session:
        for index, image in enumerate(result.images, start=1):
            if image.deleted:  # its bytes are gone: listed deleted, with its receipt, no file
                images.append(image)
            else:
                target = out_dir / f"{index:02d}-{image.sha256[:12]}{SUFFIXES[image.format]}"
                shutil.copyfile(present(image.path, f"image {image.sha256}'s file"), target)
                images.append(image.model_copy(update={"path": str(target)}))
            artifact = crud.get_artifact(
                session, tenant=tenant, sha256=image.sha256, with_deleted=True
            )
            if artifact is not None and artifact.receipt is not None:
                receipts.append(artifact.receipt)
    result = result.model_copy(
        update={"images": images, "receipt_path": str(out_dir / RECEIPT_FILE)}
    )
    document = {"run": result.model_dump(mode="json"), "receipts": receipts}
    atomic_write(out_dir / RECEIPT_FILE, json.dumps(document, indent=2).encode())
    return result


def delivery_target(run_id: str, out_dir: Path | None, *, force: bool) -> tuple[Path, str] | None:
    """Where ``runs resume`` / ``review approve`` deliver ``run_id``: ``--out`` when given,
    else the folder generate was given (while remembered); with the option name to use in
    messages. Checked as generate checks its folder, before the run goes on."""
    if out_dir is not None:
        return check_delivery_folder(out_dir, run_id, option="--out", force=force), "--out"
    remembered = remembered_folder(run_id)
    if remembered is None:
        return None
    return check_delivery_folder(remembered, run_id, option=REMEMBERED, force=force), REMEMBERED


def deliver(
    result: RunResult, target: tuple[Path, str] | None, *, tenant: str, force: bool
) -> tuple[RunResult, str]:
    """Write ``result`` to ``target`` (see :func:`delivery_target`) and settle the remembered
    folder; returns the result (its paths in the folder) and the words saying where it went
    ("" when nowhere)."""
    if target is None or not result.images:
        settle_folder(result)
        return result, ""
    folder, option = target
    result = write_outputs(result, folder, tenant=tenant, force=force)
    settle_folder(result)
    where = f"; PNGs and {RECEIPT_FILE} in {folder}"
    return result, where + (
        " (the --out folder generate was given)" if option == REMEMBERED else ""
    )
