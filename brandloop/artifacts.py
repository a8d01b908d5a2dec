"""Content-addressed image files under the data dir, each PNG carrying its receipt.

The receipt goes into an ``iTXt`` chunk inserted after ``IHDR`` without re-encoding the pixels,
so the image data stays exactly what the provider returned. Writes are atomic (temp + rename).
A file is named by the sha256 of its bytes with the suffix of its format (``.png``, ``.jpg``,
``.webp``, sniffed from the bytes).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any, Final

from brandloop.domain import ImageFormat

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RECEIPT_KEY = "brandloop:receipt"
SUFFIXES: Final[dict[ImageFormat, str]] = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}
MEDIA_TYPES: Final[dict[ImageFormat, str]] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
}


def image_format(data: bytes) -> ImageFormat | None:
    """The format of an image from its first bytes, or None when it is none of ours."""
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_text(png: bytes, key: str, text: str) -> bytes:
    """Insert an uncompressed UTF-8 ``iTXt`` chunk right after IHDR."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    ihdr_len = struct.unpack(">I", png[8:12])[0]
    end_of_ihdr = 8 + 12 + ihdr_len
    payload = key.encode("latin-1") + b"\x00\x00\x00\x00\x00" + text.encode("utf-8")
    return png[:end_of_ihdr] + _chunk(b"iTXt", payload) + png[end_of_ihdr:]


def read_png_text(png: bytes) -> dict[str, str]:
    """Every tEXt/iTXt entry of a PNG (uncompressed ones), by key."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    out: dict[str, str] = {}
    pos = 8
    while pos + 8 <= len(png):
        length = struct.unpack(">I", png[pos : pos + 4])[0]
        kind = png[pos + 4 : pos + 8]
        data = png[pos + 8 : pos + 8 + length]
        if kind == b"tEXt":
            key, _, value = data.partition(b"\x00")
            out[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"iTXt":
            key, _, rest = data.partition(b"\x00")
            compressed = rest[0:1] == b"\x01"
            _lang, _, rest = rest[2:].partition(b"\x00")
            _tkey, _, value = rest.partition(b"\x00")
            out[key.decode("latin-1")] = (zlib.decompress(value) if compressed else value).decode(
                "utf-8"
            )
        elif kind == b"IEND":
            break
        pos += 12 + length
    return out


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _umask() -> int:
    """The process's umask, read without changing it (Linux's ``/proc``); elsewhere, set and
    put back at once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``path`` whole or not at all, with ``mode`` (default: what ``open`` would give
    a new file under the umask, 0644 under 022; a temporary file is 0600 and an export or a
    report kept it, outside tester) set before the file takes its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def derived_path(derived_root: Path, sha256: str, variant: str, suffix: str) -> Path:
    """Where a file made from an artifact's bytes is cached (the studio's thumbnail of one
    width): ``derived_root/<variant>/ab/<sha256><suffix>``, named by the artifact's sha256 so
    that removing the artifact finds it (:meth:`ArtifactStore.remove`)."""
    return derived_root / variant / sha256[:2] / f"{sha256}{suffix}"


class ArtifactStore:
    """Files named by the sha256 of their bytes: ``root/ab/cd/abcd….png`` (``.jpg``, ``.webp``).

    The store knows files, not owners: who may read or delete which file is recorded per
    tenant in the registry (``brandloop.registry.artifact_owners``). ``derived_root`` holds
    files made from the bytes (:func:`derived_path`: the studio's thumbnails); they go with
    the file they were made from.
    """

    def __init__(self, root: Path, derived_root: Path | None = None) -> None:
        self.root = root
        self.derived_root = derived_root

    def path_for(self, sha256: str, suffix: str = ".png") -> Path:
        return self.root / sha256[:2] / sha256[2:4] / f"{sha256}{suffix}"

    def locate(self, sha256: str) -> Path:
        """The file of ``sha256`` whatever its format (the PNG path when there is none)."""
        for suffix in SUFFIXES.values():
            path = self.path_for(sha256, suffix)
            if path.exists():
                return path
        return self.path_for(sha256)

    def path_of(self, data: bytes, sha256: str | None = None) -> Path:
        """Where ``data`` is stored: its sha256 with the suffix of its format."""
        return self.path_for(sha256 or sha256_hex(data), SUFFIXES[image_format(data) or "png"])

    @staticmethod
    def encode(png: bytes, receipt: dict[str, Any] | None = None) -> bytes:
        """The bytes to store: the PNG with its receipt inside, when there is one."""
        if not receipt:
            return png
        return png_with_text(png, RECEIPT_KEY, json.dumps(receipt, sort_keys=True))

    def write(self, data: bytes) -> tuple[str, Path]:
        """Store ``data`` under its sha256 unless that file is there already."""
        digest = sha256_hex(data)
        path = self.path_of(data, digest)
        if not path.exists():
            atomic_write(path, data)
            log.debug("artifact stored", extra={"sha256": digest, "bytes": len(data)})
        return digest, path

    def put(self, png: bytes, receipt: dict[str, Any] | None = None) -> tuple[str, Path]:
        return self.write(self.encode(png, receipt))

    def get(self, sha256: str) -> bytes:
        return self.locate(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        return self.locate(sha256).exists()

    def remove(self, sha256: str) -> None:
        """Delete the file and every file made from it (no owner is left: the caller checked,
        under the sha256's lock)."""
        self.locate(sha256).unlink(missing_ok=True)
        for derived in self.derived(sha256):
            derived.unlink(missing_ok=True)

    def derived(self, sha256: str) -> list[Path]:
        """The files made from ``sha256``'s bytes that are cached now (:func:`derived_path`),
        whatever their variant."""
        if self.derived_root is None or not self.derived_root.is_dir():
            return []
        return sorted(
            path
            for variant in self.derived_root.iterdir()
            if variant.is_dir()
            for path in (variant / sha256[:2]).glob(f"{sha256}.*")
        )
