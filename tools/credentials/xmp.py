"""The IPTC digital source type (and, in JPEG and WebP, the receipt) as an XMP packet, written
into the file's own metadata slot without re-encoding pixels: a PNG ``iTXt`` chunk keyed
``XML:com.adobe.xmp``, a JPEG ``APP1`` segment, a WebP ``XMP `` chunk.
"""

from __future__ import annotations

import io
import re
import struct
from typing import Final
from xml.sax.saxutils import escape, unescape

from PIL import Image

from brandloop.artifacts import png_with_text
from brandloop.domain import ImageFormat

XMP_PNG_KEY: Final = "XML:com.adobe.xmp"
_JPEG_XMP_NS: Final = b"http://ns.adobe.com/xap/1.0/\x00"
_JPEG_SEGMENT_MAX: Final = 65533
_SOURCE_TYPE: Final = re.compile(
    rb"<Iptc4xmpExt:DigitalSourceType>([^<]{1,300})</Iptc4xmpExt:DigitalSourceType>"
)
_RECEIPT: Final = re.compile(rb"<brandloop:receipt>([^<]*)</brandloop:receipt>")


def xmp_packet(*, digital_source_type: str, creator_tool: str, receipt_json: str = "") -> bytes:
    """An XMP packet with ``Iptc4xmpExt:DigitalSourceType``, ``xmp:CreatorTool`` and, when
    given, brandloop's receipt (for formats without a text chunk of their own)."""
    receipt = (
        f"\n   <brandloop:receipt>{escape(receipt_json)}</brandloop:receipt>"
        if receipt_json
        else ""
    )
    text = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
        '    xmlns:brandloop="urn:brandloop:xmp:1.0/">\n'
        f"   <Iptc4xmpExt:DigitalSourceType>{escape(digital_source_type)}"
        "</Iptc4xmpExt:DigitalSourceType>\n"
        f"   <xmp:CreatorTool>{escape(creator_tool)}</xmp:CreatorTool>{receipt}\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )
    return text.encode("utf-8")


def with_xmp(data: bytes, fmt: ImageFormat, packet: bytes) -> bytes:
    """``data`` with ``packet`` in its format's XMP slot; pixels untouched."""
    if fmt == "png":
        return png_with_text(data, XMP_PNG_KEY, packet.decode("utf-8"))
    if fmt == "jpeg":
        return _jpeg_with_xmp(data, packet)
    return _webp_with_xmp(data, packet)


def _jpeg_with_xmp(data: bytes, packet: bytes) -> bytes:
    payload = _JPEG_XMP_NS + packet
    if len(payload) > _JPEG_SEGMENT_MAX:
        raise ValueError(f"XMP packet of {len(payload)} bytes does not fit one JPEG segment")
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    pos = 2  # after SOI; keep a JFIF APP0 first, as readers expect
    if data[2:4] == b"\xff\xe0":
        pos = 4 + struct.unpack(">H", data[4:6])[0]
    return data[:pos] + segment + data[pos:]


def _riff_chunk(kind: bytes, payload: bytes) -> bytes:
    pad = b"\x00" if len(payload) % 2 else b""
    return kind + struct.pack("<I", len(payload)) + payload + pad


def _webp_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks: list[tuple[bytes, bytes]] = []
    pos = 12
    while pos + 8 <= len(data):
        kind = data[pos : pos + 4]
        size = struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        chunks.append((kind, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size % 2)
    return chunks


def _webp_with_xmp(data: bytes, packet: bytes) -> bytes:
    """Extended WebP (``VP8X`` first, flag bit 2 for XMP) with an ``XMP `` chunk at the end."""
    chunks = [c for c in _webp_chunks(data) if c[0] != b"XMP "]
    if chunks and chunks[0][0] == b"VP8X":
        flags = chunks[0][1][0] | 0x04
        chunks[0] = (b"VP8X", bytes([flags]) + chunks[0][1][1:])
    else:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            alpha = "A" in image.getbands()
        flags = 0x04 | (0x10 if alpha else 0)
        header = bytes([flags, 0, 0, 0]) + (width - 1).to_bytes(3, "little")
        chunks.insert(0, (b"VP8X", header + (height - 1).to_bytes(3, "little")))
    chunks.append((b"XMP ", packet))
    body = b"WEBP" + b"".join(_riff_chunk(kind, payload) for kind, payload in chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def read_digital_source_type(data: bytes) -> str | None:
    """The ``Iptc4xmpExt:DigitalSourceType`` of the file's XMP, if it has one."""
    match = _SOURCE_TYPE.search(data)
    return match.group(1).decode("utf-8", "replace").strip() if match else None


def read_xmp_receipt(data: bytes) -> str | None:
    """The receipt JSON a JPEG or WebP carries in its XMP, unescaped."""
    match = _RECEIPT.search(data)
    if match is None:
        return None
    return unescape(match.group(1).decode("utf-8", "replace"))
