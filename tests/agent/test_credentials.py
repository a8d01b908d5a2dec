"""Every accepted image of a real run carries a signed C2PA manifest: valid, matching the
registry's receipt, listed in the receipt, free of PII, traceable after stripping; JPEG and
WebP where the backend makes them or the request asks; post-processing says so."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path

import httpx
import pytest
from PIL import Image

from brandloop.agent.runner import run_generation
from brandloop.artifacts import image_format
from brandloop.domain import GenerationRequest, Receipt, RunResult
from brandloop.policies.catalog import load_catalog
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings
from brandloop.tools.credentials import (
    ALGORITHMIC,
    COMPOSITE_TRAINED,
    TRAINED,
    receipt_assertion,
    verify_image,
)
from brandloop.tools.credentials.verify import read_manifest_store
from brandloop.tools.providers.a1111 import A1111Provider
from brandloop.tools.providers.procedural import render_preview
from brandloop.tools.providers.resilience import ProviderLimits, ResilientProvider
from tests.agent.helpers import AUTUMN, add_acme, allow
from tests.tools.credentials.conftest import strip_manifest

EMAIL = "ana.lopez@example.com"
PHONE = "+44 20 7946 0958"


async def _run(settings: Settings, db: Database, **fields) -> RunResult:
    request = GenerationRequest(
        brief=fields.pop("brief", AUTUMN),
        brand=add_acme(settings, db),
        count=fields.pop("count", 2),
        size=fields.pop("size", "256x256"),
        seed=7,
        budget_usd=1.0,
        **fields,
    )
    return await run_generation(
        request, settings=settings, db=db, use_memory=False, image_moderator=allow
    )


def _stored_receipt(db: Database, sha256: str) -> dict:
    with db.session() as session:
        row = crud.get_artifact(session, tenant="default", sha256=sha256)
        assert row is not None and row.receipt is not None
        return row.receipt


async def test_every_accepted_image_is_signed_valid_and_matches_the_registry(
    settings: Settings, db: Database
) -> None:
    result = await _run(settings, db)
    assert result.images
    with db.session() as session:
        for image in result.images:
            data = Path(image.path).read_bytes()
            assert image.sha256 == hashlib.sha256(data).hexdigest()  # the signed file's
            report = verify_image(data, session=session, tenant="default")
            assert report.status == "valid", report.problems
            assert report.receipt == "matches" and report.hard_binding == "ok"
            assert report.run_id == result.run_id and report.template == image.template
            assert report.digital_source_type == ALGORITHMIC == report.xmp_digital_source_type
            stored = crud.get_artifact(session, tenant="default", sha256=image.sha256).receipt
            credentials = stored["credentials"]
            assert credentials["manifest_label"] == report.manifest_label == image.manifest_label
            assert credentials["signer_kind"] == "development"
            assert credentials["receipt_sha256"] == Receipt.model_validate(stored).content_digest()
            store = read_manifest_store(data, "png", None)
            manifest = store["manifests"][store["active_manifest"]]
            found = next(a for a in manifest["assertions"] if a["label"] == "brandloop.receipt")
            assert found["data"] == receipt_assertion(stored)
            assert found["data"]["preview"] is True


async def test_a_receipt_changed_in_the_registry_no_longer_matches_the_manifest(
    settings: Settings, db: Database
) -> None:
    result = await _run(settings, db, count=1)
    image = result.images[0]
    with db.session() as session:
        row = crud.get_artifact(session, tenant="default", sha256=image.sha256)
        row.receipt = {**row.receipt, "cost_usd": 0.0}
    with db.session() as session:
        report = verify_image(Path(image.path).read_bytes(), session=session, tenant="default")
    assert report.status == "invalid" and report.receipt == "differs"
    assert any("cost_usd" in p and "receipt_sha256" in p for p in report.problems)


async def test_another_tenant_cannot_see_the_run_behind_a_file(
    settings: Settings, db: Database
) -> None:
    result = await _run(settings, db, count=1)
    data = Path(result.images[0].path).read_bytes()
    with db.session() as session:
        report = verify_image(data, session=session, tenant="Default")  # exact, not case-folded
    assert report.status == "unverified" and report.receipt == "not_in_registry"


async def test_a_stripped_file_is_matched_to_its_run(settings: Settings, db: Database) -> None:
    result = await _run(settings, db, count=1)
    image = result.images[0]
    signed = Path(image.path).read_bytes()
    stripped = strip_manifest(signed)
    with Image.open(io.BytesIO(signed)) as picture:
        buffer = io.BytesIO()
        picture.convert("RGB").save(buffer, format="JPEG", quality=80)  # what a platform does
    with db.session() as session:
        raw_sha = _stored_receipt(db, image.sha256)["source_sha256"]
        raw = crud.get_artifact(session, tenant="default", sha256=raw_sha)
        raw_bytes = Path(raw.path).read_bytes()
        reports = {
            name: verify_image(data, file=name, session=session, tenant="default")
            for name, data in (
                ("stripped.png", stripped),
                ("platform.jpg", buffer.getvalue()),
                ("raw.png", raw_bytes),
            )
        }
        elsewhere = verify_image(stripped, session=session, tenant="other")
    for name, report in reports.items():
        assert report.status == "absent" and report.credentials_removed, name
        assert report.match is not None and report.match.run_id == result.run_id
        assert report.match.sha256 == image.sha256
        assert report.match.manifest_label == image.manifest_label
        assert "credentials removed; matches run " + result.run_id in report.summary
    assert reports["raw.png"].match.matched_by == "sha256"
    assert reports["platform.jpg"].match.matched_by == "perceptual_hash"
    assert reports["platform.jpg"].match.distance <= 4
    assert elsewhere.match is None  # another tenant's registry knows nothing of it


async def test_no_pii_from_the_brief_reaches_the_file_or_its_manifest(
    settings: Settings, db: Database
) -> None:
    brief = f"{AUTUMN} Questions to {EMAIL} or call {PHONE}."
    result = await _run(settings, db, brief=brief, count=1)
    assert result.images
    data = Path(result.images[0].path).read_bytes()
    store = read_manifest_store(data, "png", None)
    text = json.dumps(store)
    # the number's digits in any spacing; four-digit fragments alone can occur by chance in the
    # random seed, a hash or the signature
    for needle in (EMAIL, "ana.lopez", "example.com", PHONE, "7946 0958", "2079460958"):
        assert needle not in text
        assert needle.encode() not in data
    receipt = _stored_receipt(db, result.images[0].sha256)
    assert sorted(receipt["redactions"]) == ["email", "phone"]


def _manifest_actions(data: bytes, fmt: str) -> list[dict]:
    store = read_manifest_store(data, fmt, None)
    manifest = store["manifests"][store["active_manifest"]]
    return next(a for a in manifest["assertions"] if a["label"] == "c2pa.actions.v2")["data"][
        "actions"
    ]


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
async def test_a_requested_output_format_is_signed_in_that_format(
    settings: Settings, db: Database, fmt: str
) -> None:
    result = await _run(settings, db, count=1, output_format=fmt)
    image = result.images[0]
    data = Path(image.path).read_bytes()
    assert image.format == fmt and image_format(data) == fmt
    assert image.path.endswith({"jpeg": ".jpg", "webp": ".webp"}[fmt])
    with db.session() as session:
        report = verify_image(data, session=session, tenant="default")
        row = crud.get_artifact(session, tenant="default", sha256=image.sha256)
        assert row.media_type == f"image/{fmt}"
    assert report.status == "valid" and report.receipt == "matches", report.problems
    assert [a["action"] for a in _manifest_actions(data, fmt)] == [
        "c2pa.created",
        "c2pa.transcoded",
    ]
    assert report.digital_source_type == ALGORITHMIC  # re-encoding is no new content


class FakeWebUI:
    """AUTOMATIC1111's txt2img drawing with the preview renderer: JPEG output, and a fixed
    square size whatever was asked (as some checkpoints do)."""

    def __init__(self, *, side: int | None = None, fmt: str = "PNG") -> None:
        self.side, self.fmt = side, fmt

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        width, height = (self.side, self.side) if self.side else (body["width"], body["height"])
        images = []
        for i in range(body["batch_size"]):
            png = render_preview(
                prompt=body["prompt"],
                negative_prompt=body["negative_prompt"],
                seed=body["seed"] + i,
                width=width,
                height=height,
                model="studio",
            )
            with Image.open(io.BytesIO(png)) as picture:
                buffer = io.BytesIO()
                picture.convert("RGB").save(buffer, format=self.fmt, quality=95)
            images.append(base64.b64encode(buffer.getvalue()).decode())
        info = json.dumps(
            {
                "seed": body["seed"],
                "all_seeds": [body["seed"] + i for i in range(body["batch_size"])],
                # the WebUI names the checkpoint it rendered with (the adapter checks it)
                "sd_model_name": body.get("override_settings", {}).get("sd_model_checkpoint"),
            }
        )
        return httpx.Response(200, json={"images": images, "parameters": {}, "info": info})


async def _run_a1111(settings: Settings, db: Database, fake: FakeWebUI, size: str) -> RunResult:
    adapter = A1111Provider(
        httpx.AsyncClient(transport=httpx.MockTransport(fake)),
        base_url="http://127.0.0.1:7860",
        models=load_catalog(),
    )
    request = GenerationRequest(
        brief=AUTUMN, brand=add_acme(settings, db), count=1, size=size, seed=5
    )
    return await run_generation(
        request,
        settings=settings,
        db=db,
        providers={"a1111": ResilientProvider(adapter, ProviderLimits(max_attempts=1))},
        models=[m for m in load_catalog() if m.id == "a1111/sdxl-base"],
        use_memory=False,
        image_moderator=allow,
    )


async def test_a_jpeg_from_the_backend_ships_as_a_signed_jpeg(
    settings: Settings, db: Database
) -> None:
    result = await _run_a1111(settings, db, FakeWebUI(fmt="JPEG"), "256x256")
    image = result.images[0]
    data = Path(image.path).read_bytes()
    assert image_format(data) == "jpeg" and image.format == "jpeg"
    with db.session() as session:
        report = verify_image(data, session=session, tenant="default")
    assert report.status == "valid" and report.receipt == "matches", report.problems
    assert report.digital_source_type == TRAINED == report.xmp_digital_source_type
    assert [a["action"] for a in _manifest_actions(data, "jpeg")] == ["c2pa.created"]


async def test_a_post_processed_image_is_a_composite_with_its_edits_listed(
    settings: Settings, db: Database
) -> None:
    result = await _run_a1111(settings, db, FakeWebUI(side=300), "256x128")
    data = Path(result.images[0].path).read_bytes()
    with db.session() as session:
        report = verify_image(data, session=session, tenant="default")
    assert report.status == "valid", report.problems
    assert report.digital_source_type == COMPOSITE_TRAINED
    actions = _manifest_actions(data, "png")
    assert [a["action"] for a in actions] == ["c2pa.created", "c2pa.cropped", "c2pa.resized"]
    assert actions[0]["softwareAgent"]["name"] == "a1111/sdxl-base"


async def test_a_signer_outage_loses_nothing_and_resume_signs_without_paying_again(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    from brandloop.agent.runner import resume_run
    from brandloop.tools.credentials import SigningError
    from brandloop.tools.credentials.devca import make_dev_credentials
    from tests.agent.helpers import CountingProvider
    from tests.fakes.provider_server import serve
    from tests.fakes.remote_signer import FakeRemoteSigner

    acme = make_dev_credentials(org="Acme Corp", ca_name="Acme Root", signer_name="Acme Signer")
    chain = tmp_path / "chain.pem"
    chain.write_text(acme.chain_pem)
    signer_app = FakeRemoteSigner(key_pem=acme.key_pem, fail_with=503)
    provider = CountingProvider()
    with serve(signer_app, prefix="") as base:
        configured = Settings.model_validate(
            {
                **settings.model_dump(),
                "c2pa_cert_chain": chain,
                "c2pa_remote_url": f"{base}/sign",
                "c2pa_remote_token": signer_app.token,
            }
        )
        request = GenerationRequest(
            brief=AUTUMN,
            brand=add_acme(settings, db),
            count=1,
            size="256x256",
            seed=7,
            budget_usd=1.0,
        )
        with pytest.raises(SigningError, match="HTTP 503"):
            await run_generation(
                request,
                settings=configured,
                db=db,
                run_id="run_signer_outage",
                providers={"procedural": provider},
                use_memory=False,
                image_moderator=allow,
            )
        paid = len(provider.calls)
        with db.session() as session:
            attempts = crud.list_attempts(session, run_id="run_signer_outage")
            assert any(a.outcome == "accepted" for a in attempts)  # what was paid for is kept
        signer_app.fail_with = None
        result = await resume_run(
            "run_signer_outage",
            settings=configured,
            db=db,
            providers={"procedural": provider},
            use_memory=False,
        )
    assert result.status == "succeeded" and len(provider.calls) == paid
    data = Path(result.images[0].path).read_bytes()
    with db.session() as session:
        report = verify_image(data, session=session, tenant="default", trust_pem=acme.ca_pem)
    assert report.status == "valid" and report.trust == "trusted" and report.signer == "Acme Signer"
