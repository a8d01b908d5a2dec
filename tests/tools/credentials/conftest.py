"""Images, receipts and signers for the Content Credentials tests: real c2pa signing and
reading, certificates made on the spot, no network but 127.0.0.1."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from brandloop.domain import AcceptanceRule, Receipt
from brandloop.tools.credentials import KeyFileSigner, digital_source_type
from brandloop.tools.credentials.devca import DevCredentials, make_dev_credentials


def picture(side: int = 256, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8))


def encode(image: Image.Image, fmt: str = "PNG", **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def receipt_dict(
    *, provider: str = "openai", edits: list[str] | None = None, **fields: Any
) -> dict:
    edits = edits or []
    base: dict[str, Any] = {
        "run_id": "run_0123456789abcdef",
        "attempt_id": "cand-1",
        "template": "brand-hero@3",
        "prompt": "a teal cup on cream linen",
        "negative_prompt": "",
        "model": f"{provider}/model-x",
        "model_version": "2025-01",
        "provider": provider,
        "seed_requested": 7,
        "seed_returned": 7,
        "width": 256,
        "height": 256,
        "scores": {"palette": 0.9, "sharpness": 0.8},
        "composite": 0.85,
        "cost_usd": 0.04,
        "acceptance": AcceptanceRule(accept_composite=0.6, require_all_signals=True),
        "digital_source_type": digital_source_type(provider, edits),
        "edits": edits,
    }
    base.update(fields)
    return Receipt.model_validate(base).model_dump(mode="json")


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, pos = [], 8
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        chunks.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return chunks


def png_from_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    out = [b"\x89PNG\r\n\x1a\n"]
    for kind, payload in chunks:
        crc = struct.pack(">I", zlib.crc32(kind + payload))
        out.append(struct.pack(">I", len(payload)) + kind + payload + crc)
    return b"".join(out)


def strip_manifest(png: bytes) -> bytes:
    """The PNG without its C2PA manifest chunk (``caBX``), as a metadata stripper leaves it."""
    return png_from_chunks([(k, p) for k, p in png_chunks(png) if k != b"caBX"])


@pytest.fixture(scope="session")
def dev() -> DevCredentials:
    return make_dev_credentials()


@pytest.fixture(scope="session")
def acme_ca() -> DevCredentials:
    """A production-like CA that is not brandloop's development one."""
    return make_dev_credentials(
        org="Acme Corp", ca_name="Acme Content Root", signer_name="Acme Content Signer"
    )


@pytest.fixture
def dev_signer(dev: DevCredentials) -> KeyFileSigner:
    return KeyFileSigner(
        chain_pem=dev.chain_pem, key_pem=dev.key_pem, alg="es256", kind="development"
    )


@pytest.fixture
def acme_signer(acme_ca: DevCredentials) -> KeyFileSigner:
    return KeyFileSigner(
        chain_pem=acme_ca.chain_pem, key_pem=acme_ca.key_pem, alg="es256", kind="local"
    )


def write_pem(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path
