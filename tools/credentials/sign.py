"""Sign one accepted image: its receipt and XMP go in first, then the C2PA manifest, so the
manifest's hard binding covers the final bytes (and the artifact's sha256 is the signed file's).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any, Final

import c2pa

from brandloop.artifacts import MEDIA_TYPES, RECEIPT_KEY, SUFFIXES, png_with_text
from brandloop.domain import ImageFormat
from brandloop.tools.credentials.errors import SigningError
from brandloop.tools.credentials.manifest import (
    brandloop_version,
    manifest_definition,
    new_manifest_label,
)
from brandloop.tools.credentials.signers import ContentSigner
from brandloop.tools.credentials.xmp import with_xmp, xmp_packet

# No thumbnail (it would re-encode the image and cost most of the time); no network; the
# signature is checked by verify, not again right after signing.
_SIGN_SETTINGS: Final = {
    "builder": {"thumbnail": {"enabled": False}},
    "verify": {"verify_after_sign": False, "remote_manifest_fetch": False, "ocsp_fetch": False},
}


@dataclass(frozen=True)
class SignedImage:
    data: bytes
    format: ImageFormat
    manifest_label: str


def with_metadata(data: bytes, fmt: ImageFormat, receipt: dict[str, Any]) -> bytes:
    """The image with its receipt (PNG: an ``iTXt`` chunk; JPEG, WebP: inside the XMP) and an
    XMP packet naming the IPTC digital source type and the tool that made it."""
    receipt_json = json.dumps(receipt, sort_keys=True)
    packet = xmp_packet(
        digital_source_type=receipt["digital_source_type"],
        creator_tool=f"brandloop {brandloop_version()} ({receipt['model']} {receipt['model_version']})",
        receipt_json="" if fmt == "png" else receipt_json,
    )
    if fmt == "png":
        data = png_with_text(data, RECEIPT_KEY, receipt_json)
    return with_xmp(data, fmt, packet)


def sign_image(
    data: bytes, fmt: ImageFormat, receipt: dict[str, Any], signer: ContentSigner
) -> SignedImage:
    """``data`` with metadata and a signed manifest for ``receipt`` (its stored JSON form)."""
    label = new_manifest_label()
    definition = manifest_definition(
        receipt, fmt=fmt, label=label, title=f"{receipt['attempt_id']}{SUFFIXES[fmt]}"
    )
    prepared = with_metadata(data, fmt, receipt)
    native = signer.native()
    output = io.BytesIO()
    try:
        with (
            c2pa.Context.from_dict(_SIGN_SETTINGS) as context,
            c2pa.Builder(definition, context=context) as builder,
        ):
            builder.sign(native.signer, MEDIA_TYPES[fmt], io.BytesIO(prepared), output)
    except c2pa.C2paError as exc:
        reason = "; ".join(native.failures) or f"{type(exc).__name__.lstrip('_')}: {exc}"
        raise SigningError(
            f"signing the C2PA manifest failed ({signer.kind} signer): {reason}"
        ) from exc
    finally:
        native.signer.close()
    return SignedImage(data=output.getvalue(), format=fmt, manifest_label=label)
