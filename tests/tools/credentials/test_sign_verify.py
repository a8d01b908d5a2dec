"""Signing then verifying with the real c2pa library: a valid manifest, a hard binding that
breaks on one changed pixel or byte, trust decided by the trust list, every format."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from brandloop.artifacts import RECEIPT_KEY, read_png_text
from brandloop.errors import BadInputError
from brandloop.tools.credentials import (
    ALGORITHMIC,
    COMPOSITE_TRAINED,
    TRAINED,
    digital_source_type,
    receipt_assertion,
    sign_image,
    verify_image,
)
from brandloop.tools.credentials.verify import (
    CredentialReport,
    RegistryMatch,
    read_manifest_store,
    summary_line,
)
from brandloop.tools.credentials.xmp import read_digital_source_type, read_xmp_receipt
from tests.tools.credentials.conftest import (
    encode,
    picture,
    png_chunks,
    png_from_chunks,
    receipt_dict,
)


def test_signing_then_verifying_is_valid_and_says_who_and_what(dev_signer) -> None:
    receipt = receipt_dict()
    signed = sign_image(encode(picture()), "png", receipt, dev_signer)
    report = verify_image(signed.data, file="a.png")
    assert report.status == "valid", report.problems
    assert (report.signature, report.hard_binding) == ("ok", "ok")
    assert report.manifest_label == signed.manifest_label
    assert report.run_id == "run_0123456789abcdef" and report.template == "brand-hero@3"
    assert report.signer == "brandloop development signer" and report.development_signer
    assert report.trust == "untrusted"
    assert report.digital_source_type == TRAINED == report.xmp_digital_source_type
    assert report.summary.startswith("a.png: valid - signed by")
    assert (
        "development CA: UNTRUSTED" in report.summary
        and "run run_0123456789abcdef" in report.summary
    )


def test_the_manifest_carries_the_created_action_generator_and_receipt(dev_signer) -> None:
    receipt = receipt_dict()
    signed = sign_image(encode(picture()), "png", receipt, dev_signer)
    store = read_manifest_store(signed.data, "png", None)
    manifest = store["manifests"][store["active_manifest"]]
    actions = next(a for a in manifest["assertions"] if a["label"] == "c2pa.actions.v2")
    created = actions["data"]["actions"][0]
    assert created["action"] == "c2pa.created"
    assert created["digitalSourceType"] == TRAINED
    assert created["softwareAgent"] == {"name": "openai/model-x", "version": "2025-01"}
    assert manifest["claim_generator_info"][0]["name"] == "brandloop"
    found = next(a for a in manifest["assertions"] if a["label"] == "brandloop.receipt")["data"]
    assert found == receipt_assertion(receipt)
    assert found["acceptance"]["rule"] == "composite >= 0.6 and every signal passes"
    assert found["seed"] == 7 and found["cost_usd"] == 0.04 and found["scores"]["palette"] == 0.9
    assert len(found["receipt_sha256"]) == 64
    # signing came after the receipt chunk: the full receipt is in the signed file
    assert json.loads(read_png_text(signed.data)[RECEIPT_KEY])["run_id"] == receipt["run_id"]


def _one_pixel_changed(signed: bytes, source: Image.Image) -> bytes:
    """The signed file with its IDAT replaced by the image with one pixel changed (a valid PNG
    whose manifest, receipt and XMP chunks are untouched)."""
    changed = source.copy()
    r, g, b = changed.getpixel((10, 10))
    changed.putpixel((10, 10), ((r + 1) % 256, g, b))
    new_idat = [p for k, p in png_chunks(encode(changed)) if k == b"IDAT"]
    chunks, out, placed = png_chunks(signed), [], False
    for kind, payload in chunks:
        if kind == b"IDAT":
            if not placed:
                out.extend((b"IDAT", data) for data in new_idat)
                placed = True
            continue
        out.append((kind, payload))
    return png_from_chunks(out)


def test_one_changed_pixel_fails_the_hard_binding(dev_signer) -> None:
    source = picture()
    signed = sign_image(encode(source), "png", receipt_dict(), dev_signer).data
    tampered = _one_pixel_changed(signed, source)
    with Image.open(io.BytesIO(tampered)) as check:  # still a decodable PNG
        assert check.getpixel((10, 10)) != source.getpixel((10, 10))
    report = verify_image(tampered)
    assert report.status == "invalid"
    assert report.hard_binding == "failed" and report.signature == "ok"
    assert any(p.startswith("assertion.dataHash.mismatch") for p in report.problems)
    assert "hard binding does not match" in report.summary


@pytest.mark.parametrize("where", ["IDAT", "IEND-before"])
def test_one_changed_byte_fails_the_hard_binding(dev_signer, where: str) -> None:
    signed = sign_image(encode(picture()), "png", receipt_dict(), dev_signer).data
    chunks = png_chunks(signed)
    index = next(i for i, (k, _) in enumerate(chunks) if k == b"IDAT")
    if where == "IDAT":  # one byte of compressed pixel data, CRC fixed so only C2PA can tell
        kind, payload = chunks[index]
        chunks[index] = (kind, payload[:50] + bytes([payload[50] ^ 0x01]) + payload[51:])
        tampered = png_from_chunks(chunks)
    else:  # one byte of a text chunk added after signing
        tampered = png_from_chunks([*chunks[:-1], (b"tEXt", b"Comment\x00x"), chunks[-1]])
    assert tampered != signed
    report = verify_image(tampered)
    assert report.status == "invalid" and report.hard_binding == "failed"


def test_a_changed_receipt_chunk_fails_the_hard_binding(dev_signer) -> None:
    signed = sign_image(encode(picture()), "png", receipt_dict(), dev_signer).data
    chunks = png_chunks(signed)
    index = next(
        i for i, (k, p) in enumerate(chunks) if k == b"iTXt" and p.startswith(b"brandloop")
    )
    kind, payload = chunks[index]
    chunks[index] = (kind, payload.replace(b'"cost_usd": 0.04', b'"cost_usd": 0.00'))
    report = verify_image(png_from_chunks(chunks))
    assert report.status == "invalid" and report.hard_binding == "failed"


def test_a_signer_from_an_unknown_ca_is_reported_untrusted(acme_signer, acme_ca, dev) -> None:
    signed = sign_image(encode(picture()), "png", receipt_dict(), acme_signer).data
    unknown = verify_image(signed, trust_pem=dev.ca_pem)  # a trust list without Acme's root
    assert unknown.status == "valid" and unknown.trust == "untrusted"
    assert not unknown.development_signer and unknown.signer == "Acme Content Signer"
    assert "UNTRUSTED: not on the trust list" in unknown.summary
    no_list = verify_image(signed)
    assert no_list.trust == "untrusted"
    trusted = verify_image(signed, trust_pem=acme_ca.ca_pem)
    assert trusted.status == "valid" and trusted.trust == "trusted"
    assert '"Acme Content Signer" (trusted)' in trusted.summary


def test_the_development_signer_stays_untrusted_even_on_a_trust_list(dev_signer, dev) -> None:
    signed = sign_image(encode(picture()), "png", receipt_dict(), dev_signer).data
    report = verify_image(signed, trust_pem=dev.ca_pem)
    assert report.development_signer and report.trust == "untrusted"


@pytest.mark.parametrize(
    ("fmt", "pil", "options"),
    [
        ("jpeg", "JPEG", {"quality": 90}),
        ("webp", "WEBP", {"quality": 90}),
        ("webp", "WEBP", {"lossless": True}),
    ],
)
def test_jpeg_and_webp_carry_the_same_manifest_xmp_and_receipt(
    dev_signer, fmt: str, pil: str, options: dict
) -> None:
    receipt = receipt_dict(format=fmt)
    signed = sign_image(encode(picture(), pil, **options), fmt, receipt, dev_signer)
    report = verify_image(signed.data)
    assert report.format == fmt and report.status == "valid", report.problems
    assert report.xmp_digital_source_type == TRAINED
    assert json.loads(read_xmp_receipt(signed.data))["run_id"] == receipt["run_id"]
    with Image.open(io.BytesIO(signed.data)) as image:
        image.load()  # still decodes
    flipped = bytearray(signed.data)
    flipped[len(flipped) // 2] ^= 0x01
    assert verify_image(bytes(flipped)).status == "invalid"


def test_an_image_without_a_manifest_is_absent_and_a_non_image_is_bad_input() -> None:
    report = verify_image(encode(picture()), file="plain.png")
    assert report.status == "absent" and report.match is None
    assert (
        report.summary
        == "plain.png: absent - no Content Credentials, and no run in this registry matches"
    )
    with pytest.raises(BadInputError, match="not a PNG, JPEG or WebP"):
        verify_image(b"%PDF-1.7 not an image", file="x.pdf")


def test_a_corrupt_manifest_is_invalid_not_a_crash(dev_signer) -> None:
    signed = sign_image(encode(picture()), "png", receipt_dict(), dev_signer).data
    chunks = png_chunks(signed)
    index = next(i for i, (k, _) in enumerate(chunks) if k == b"caBX")
    kind, payload = chunks[index]
    chunks[index] = (kind, payload[:40] + b"\x00" * 64 + payload[104:])
    report = verify_image(png_from_chunks(chunks))
    assert report.status == "invalid"


def test_digital_source_type_follows_what_made_and_changed_the_pixels() -> None:
    assert digital_source_type("procedural", []) == ALGORITHMIC  # the preview renderer
    assert digital_source_type("openai", []) == TRAINED
    assert digital_source_type("openai", ["c2pa.transcoded"]) == TRAINED
    assert digital_source_type("a1111", ["c2pa.cropped", "c2pa.resized"]) == COMPOSITE_TRAINED


def test_xmp_digital_source_type_is_in_every_format(dev_signer) -> None:
    for fmt, pil in (("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")):
        receipt = receipt_dict(provider="procedural", format=fmt)
        signed = sign_image(encode(picture(), pil), fmt, receipt, dev_signer).data
        assert read_digital_source_type(signed) == ALGORITHMIC


@pytest.mark.parametrize("trust", [None, "untrusted"])
def test_a_report_without_a_signer_says_no_signer_could_be_read(trust) -> None:
    """No signer (a manifest that cannot be read, or one naming no certificate): the summary
    names none and gives no trust verdict - it used to say 'signed by "None" (UNTRUSTED ...)'."""
    report = CredentialReport(
        file="cut.png", sha256="ab" * 32, format="png", status="invalid", trust=trust,
        problems=["the manifest cannot be read: PNG out of range"],
    )  # fmt: skip
    assert summary_line(report) == (
        "cut.png: invalid - no signer could be read; no brandloop run named; "
        "problems: the manifest cannot be read: PNG out of range"
    )


@pytest.mark.parametrize(
    ("matched_by", "distance", "how"),
    [
        ("sha256", None, "by sha256"),
        ("perceptual_hash", 3, "by perceptual hash (3/64 bits apart)"),
        ("perceptual_hash", None, "by perceptual hash"),
        ("manifest", None, "by its manifest"),
    ],
)
def test_an_absent_files_match_is_said_without_none(matched_by, distance, how) -> None:
    match = RegistryMatch(
        run_id="run_1", attempt_id=None, template=None, sha256="cd" * 32,
        matched_by=matched_by, distance=distance,
    )  # fmt: skip
    report = CredentialReport(
        file="copy.png", sha256="ab" * 32, format="png", status="absent", match=match,
        credentials_removed=True,
    )  # fmt: skip
    assert summary_line(report) == (
        f"copy.png: absent - credentials removed; matches run run_1, template ? {how}"
    )
