"""``brandloop score IMAGE... --brand PATH_OR_ID``: every quality signal of existing images,
with the reason for each, as the agent would see them."""

from __future__ import annotations

import math
import stat
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
import typer
from rich.text import Text

from brandloop.api.cli import tables
from brandloop.api.cli.app import app
from brandloop.api.cli.common import database, looks_like_path, out, print_json, settings
from brandloop.api.cli.tables import Column, Wide
from brandloop.domain import BrandKit, Scores, parse_size
from brandloop.errors import BadInputError, NotFoundError
from brandloop.policies.brand_policy import load_brand_scoring_policy
from brandloop.policies.brandkit import load_brand_kit
from brandloop.policies.scoring import ScoringPolicy, load_scoring_policy
from brandloop.registry import crud
from brandloop.tools.credentials import shown_name
from brandloop.tools.providers.errors import MalformedResponseError
from brandloop.tools.scoring.alignment import load_alignment_scorer
from brandloop.tools.scoring.signals import ImageAnalysis, analyse_image, score_set

#: Refuse to read files larger than this at all (compressed size); the pixel limit follows.
MAX_FILE_BYTES = 200 * 1024 * 1024


def resolve_brand(ref: str, *, tenant: str) -> BrandKit:
    """A brand kit from a YAML path or from the registry by id or name (nothing is written)."""
    if looks_like_path(ref):
        return load_brand_kit(Path(ref))
    with database().session() as session:
        row = crud.get_brand(session, tenant=tenant, ref=ref)
        if row is None:
            raise NotFoundError(f"unknown brand {ref!r}; give a brand kit YAML or add it first")
        return crud.brand_kit(row)


def _registered_id(kit: BrandKit, *, tenant: str) -> str | None:
    """The registry id of the brand ``kit`` names - memory's key, never its slug or name -
    or None when the tenant has not added it (a kit read from a YAML path only)."""
    with database().session() as session:
        row = crud.get_brand(session, tenant=tenant, ref=kit.name)
        return row.id if row is not None else None


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def read_image_file(path: Path) -> bytes:
    """The bytes of a regular file of at most ``MAX_FILE_BYTES``. What is not one (a directory,
    a FIFO, a device) is refused from its ``stat`` before anything opens it, so a FIFO never
    blocks and ``/dev/zero`` is never read; the name is shown as ``shown_name`` prints it."""
    name = shown_name(str(path))
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise BadInputError(f"{name}: no such file") from None
    except OSError as exc:
        raise BadInputError(f"{name}: cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        kind = next((what for test, what in _KINDS if test(mode)), "not a file")
        raise BadInputError(f"{name}: not a regular file ({kind})")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise BadInputError(f"{name}: cannot be read ({exc.strerror})") from None
    if len(data) > MAX_FILE_BYTES:
        size = path.stat().st_size
        raise BadInputError(f"{name}: {size:,} bytes is larger than {MAX_FILE_BYTES:,}")
    return data


def _wanted(size: str | None, brand: BrandKit, width: int, height: int) -> tuple[int, int]:
    """The requested size: ``--size``; else the brand format nearest the image's aspect,
    scaled to the image's width (so only the aspect ratio is judged, not the resolution)."""
    if size:
        try:
            return parse_size(size)
        except ValueError as exc:
            raise BadInputError(str(exc)) from exc
    formats = [parse_size(f) for f in brand.default_formats] or [(width, height)]
    fw, fh = min(formats, key=lambda wh: abs(math.log((wh[0] / wh[1]) / (width / height))))
    return width, max(1, round(width * fh / fw))


def _references(brand: BrandKit, use_memory: bool) -> list[npt.NDArray[np.float32]]:
    """The descriptors of the brand's accepted images under this kit, as the agent's score
    node reads them (memory is keyed by the brand's registry id)."""
    if not use_memory:
        return []
    from brandloop.agent.kit_memory import kit_scope
    from brandloop.agent.nodes.score import reference_descriptors
    from brandloop.agent.runner import open_memory

    cfg = settings()
    brand_id = _registered_id(brand, tenant=cfg.tenant)
    if brand_id is None:
        return []
    scope = kit_scope(database(), tenant=cfg.tenant, brand_id=brand_id, kit=brand)
    return reference_descriptors(
        open_memory(cfg), tenant=cfg.tenant, brand_id=brand_id, scope=scope
    )


def _probe_size(data: bytes, path: Path, policy: ScoringPolicy) -> tuple[int, int]:
    from brandloop.tools.scoring.decode import decode_image

    try:
        image = decode_image(data, max_pixels=policy.max_pixels)
    except MalformedResponseError as exc:
        raise BadInputError(f"{path}: {exc}") from exc
    return image.width, image.height


def _signal_json(scores: Scores) -> dict[str, Any]:
    return {name: sig.model_dump(exclude={"name"}) for name, sig in scores.signals.items()}


SIGNAL_COLUMNS = (
    Column("signal"),
    Column("value", justify="right"),
    Column(""),
    Column("why", text=True),
)


@app.command("score")
def score(
    images: Annotated[list[Path], typer.Argument(help="image files (PNG, JPEG, WebP, TIFF, ...)")],
    brand: Annotated[str, typer.Option("--brand", help="brand kit YAML path, or brand id/name")],
    prompt: Annotated[
        str | None, typer.Option("--prompt", help="the prompt, for the alignment scorer")
    ] = None,
    size: Annotated[
        str | None, typer.Option("--size", help="the size that was asked for, WxH")
    ] = None,
    policy_path: Annotated[
        Path | None,
        typer.Option("--policy", help="scoring policy YAML (default: the brand's own policy)"),
    ] = None,
    use_memory: Annotated[
        bool,
        typer.Option("--memory/--no-memory", help="compare with the brand's accepted images"),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
    wide: Wide = False,
) -> None:
    """Score images on every signal (palette, sharpness, exposure, contrast, colourfulness,
    format, similarity, near-duplicates within the given set) and say why each passed or not."""
    cfg = settings()
    kit = resolve_brand(brand, tenant=cfg.tenant)
    policy = (
        load_scoring_policy(policy_path)
        if policy_path is not None
        else load_brand_scoring_policy(kit.slug, search=[cfg.data_dir / "policies"])
    )
    aligner = load_alignment_scorer(policy.alignment)
    references = _references(kit, use_memory)
    analyses: list[ImageAnalysis] = []
    for path in images:
        data = read_image_file(path)
        width, height = _probe_size(data, path, policy)
        wanted_w, wanted_h = _wanted(size, kit, width, height)
        try:
            analyses.append(
                analyse_image(
                    data,
                    brand=kit,
                    width=wanted_w,
                    height=wanted_h,
                    policy=policy,
                    references=references,
                    prompt=prompt,
                    aligner=aligner,
                )
            )
        except MalformedResponseError as exc:
            raise BadInputError(f"{path}: {exc}") from exc
    scored = score_set(analyses, policy, labels=[p.name for p in images])
    report = [
        {
            "path": str(path),
            "width": analysis.width,
            "height": analysis.height,
            "composite": round(scores.composite, 4),
            "accepted": policy.accepts(scores),
            "failed": scores.failed,
            "signals": _signal_json(scores),
        }
        for path, analysis, scores in zip(images, analyses, scored, strict=True)
    ]
    if as_json:
        print_json({"brand": kit.name, "images": report})
        return
    for item, scores in zip(report, scored, strict=True):
        verdict = (
            Text("meets the bar", style="green")
            if item["accepted"]
            else Text("below the bar", style="red")
        )
        rows: list[tuple[tables.Cell, ...]] = [
            (
                name,
                f"{sig.value:.2f}",
                Text("pass", style="green") if sig.passed else Text("FAIL", style="red"),
                sig.explanation,
            )
            for name, sig in scores.signals.items()
        ]
        if aligner is None:
            rows.append(("alignment", "-", "off", "optional; set alignment in the scoring policy"))
        if not references:
            rows.append(("similarity", "-", "n/a", "no accepted images of this brand in memory"))
        out.print(
            Text.assemble(
                f"{item['path']}  {item['width']}x{item['height']}  "
                f"composite {item['composite']:.2f}  ",
                verdict,
            )
        )
        tables.show(out, None, SIGNAL_COLUMNS, rows, wide=wide)
