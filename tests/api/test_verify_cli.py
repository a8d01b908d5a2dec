"""``brandloop verify`` and the credentials lines of ``brandloop generate``, through the CLI."""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import pytest

from brandloop.settings import Settings
from tests.api.test_cli import BRANDS, BRIEF, data_snapshot, run_cli
from tests.tools.credentials.conftest import strip_manifest, write_pem


def _generate(capsys, tmp_path: Path, *extra: str) -> tuple[str, Path]:
    out_dir = tmp_path / "out"
    code, out, err = run_cli(
        capsys,
        "generate",
        BRIEF,
        "--brand",
        str(BRANDS / "acme-coffee.yaml"),
        "--n",
        "2",
        "--size",
        "256x256",
        "--seed",
        "11",
        "--out",
        str(out_dir),
        *extra,
    )
    assert code == 0, err
    return out, out_dir


def test_generate_prints_a_verify_line_per_image_and_the_receipt_lists_the_labels(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    out, out_dir = _generate(capsys, tmp_path)
    files = sorted(out_dir.glob("*.png"))
    assert len(files) == 2
    assert "Content Credentials" in out
    for path in files:
        assert f'{path}: valid - signed by "brandloop development signer"' in out
    assert out.count("development CA: UNTRUSTED") == 2
    document = json.loads((out_dir / "receipt.json").read_text())
    labels = [r["credentials"]["manifest_label"] for r in document["receipts"]]
    assert len(labels) == 2 and all(label.startswith("urn:c2pa:") for label in labels)
    assert [i["manifest_label"] for i in document["run"]["images"]] == labels

    code, out, err = run_cli(capsys, "verify", *map(str, files))
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 2 and all(": valid - " in line for line in lines)
    assert all(f"run {document['run']['run_id']}, template brand-hero@1" in line for line in lines)

    code, _, _ = run_cli(capsys, "verify", "--trusted", str(files[0]))
    assert code == 6  # the development CA is never trusted

    stripped = tmp_path / "stripped.png"
    stripped.write_bytes(strip_manifest(files[0].read_bytes()))
    code, out, _ = run_cli(capsys, "verify", str(files[0]), str(stripped), "--json")
    assert code == 6
    reports = json.loads(out)
    assert [r["status"] for r in reports] == ["valid", "absent"]
    assert (
        reports[1]["credentials_removed"]
        and reports[1]["match"]["run_id"] == document["run"]["run_id"]
    )
    assert reports[0]["manifest_label"] == labels[0]
    assert {"summary", "trust", "hard_binding", "signature", "receipt", "signer"} <= reports[
        0
    ].keys()


def test_generate_can_ship_jpeg(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    out, out_dir = _generate(capsys, tmp_path, "--format", "jpeg")
    files = sorted(out_dir.glob("*.jpg"))
    assert len(files) == 2 and not list(out_dir.glob("*.png"))
    assert out.count(": valid - signed by") == 2


def test_a_production_signer_from_settings_signs_the_run(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, monkeypatch, acme_ca
) -> None:
    monkeypatch.setenv(
        "BRANDLOOP_C2PA_CERT_CHAIN", str(write_pem(tmp_path, "chain.pem", acme_ca.chain_pem))
    )
    monkeypatch.setenv(
        "BRANDLOOP_C2PA_PRIVATE_KEY", str(write_pem(tmp_path, "key.pem", acme_ca.key_pem))
    )
    monkeypatch.setenv(
        "BRANDLOOP_C2PA_TRUST_ANCHORS", str(write_pem(tmp_path, "roots.pem", acme_ca.ca_pem))
    )
    from brandloop.settings import get_settings

    get_settings.cache_clear()
    out, out_dir = _generate(capsys, tmp_path)
    assert out.count('signed by "Acme Content Signer" (trusted)') == 2
    assert "development" not in out
    code, _, err = run_cli(capsys, "verify", "--trusted", *map(str, sorted(out_dir.glob("*.png"))))
    assert code == 0, err


def test_a_truncated_signed_file_is_invalid_and_names_no_signer(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    """A signed PNG cut short (its manifest unreadable) has no signer: the summary says so, as
    the report's ``signer`` and ``trust`` (null) do, rather than 'signed by "None"'."""
    _, out_dir = _generate(capsys, tmp_path)
    data = sorted(out_dir.glob("*.png"))[0].read_bytes()
    cut = tmp_path / "cut"
    cut.mkdir()
    # within the header, mid-manifest, half way, without IEND, one byte short
    lengths = (20, 100, 1000, len(data) // 2, len(data) - 12, len(data) - 1)
    files = [cut / f"cut-{n:07d}.png" for n in lengths]
    for n, path in zip(lengths, files, strict=True):
        path.write_bytes(data[:n])

    code, out, err = run_cli(capsys, "verify", *map(str, files))
    assert code == 6, err
    lines = out.strip().splitlines()
    assert len(lines) == len(files)
    for path, line in zip(files, lines, strict=True):
        assert line.startswith(f"{path}: invalid - no signer could be read; no brandloop run named")
        assert "None" not in line and "signed by" not in line and "UNTRUSTED" not in line
        assert "the manifest cannot be read" in line

    code, out, _ = run_cli(capsys, "verify", "--json", *map(str, files))
    assert code == 6
    reports = json.loads(out)
    assert [(r["status"], r["signer"], r["trust"]) for r in reports] == [
        ("invalid", None, None)
    ] * len(files)
    assert [r["summary"] for r in reports] == lines


@pytest.fixture
def acme_ca():
    from brandloop.tools.credentials.devca import make_dev_credentials

    return make_dev_credentials(
        org="Acme Corp", ca_name="Acme Content Root", signer_name="Acme Content Signer"
    )


def test_verify_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, monkeypatch
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    for argv, message in (
        (["verify", str(tmp_path / "missing.png")], "no such file"),
        (["verify", str(text)], "is not a PNG, JPEG or WebP image"),
        (["verify"], "Missing argument"),
    ):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and err.count("\n") == 1 and message in err, (argv, err)
    monkeypatch.setenv("BRANDLOOP_C2PA_TRUST_ANCHORS", str(text))
    from brandloop.settings import get_settings

    get_settings.cache_clear()
    png = tmp_path / "plain.png"
    from tests.tools.credentials.conftest import encode, picture

    png.write_bytes(encode(picture(64)))
    code, _, err = run_cli(capsys, "verify", str(png))
    assert code == 2 and "BRANDLOOP_C2PA_TRUST_ANCHORS" in err


def test_bad_signer_settings_stop_generate_before_anything_is_stored(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    tmp_path: Path,
    data_dir: Path,
    monkeypatch,
) -> None:
    run_cli(capsys, "brands", "add", str(BRANDS / "acme-coffee.yaml"))
    run_cli(capsys, "models", "list")
    before = data_snapshot(data_dir)
    monkeypatch.setenv("BRANDLOOP_C2PA_CERT_CHAIN", str(tmp_path / "nope.pem"))
    from brandloop.settings import get_settings

    get_settings.cache_clear()
    code, _, err = run_cli(
        capsys, "generate", "a cup", "--brand", "Acme Coffee", "--size", "128x128"
    )
    assert code == 2 and err.count("\n") == 1
    assert "BRANDLOOP_C2PA_CERT_CHAIN needs" in err
    assert data_snapshot(data_dir) == before


def test_verify_names_what_a_path_is_when_it_is_not_a_regular_file(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    """A directory, a device and a FIFO exist: each is named for what it is, with exit 2, and
    nothing opens the FIFO (it would block) or reads /dev/zero (it never ends)."""
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    for path, kind in (
        (tmp_path, "a directory"),
        (Path("/dev/zero"), "a character device"),
        (fifo, "a FIFO"),
    ):
        code, out, err = run_cli(capsys, "verify", str(path))
        assert code == 2, err
        assert err == f"brandloop: error: {path}: not a regular file ({kind})\n"
        assert out == ""
    code, _, err = run_cli(capsys, "verify", str(tmp_path / "gone.png"))
    assert code == 2 and err == f"brandloop: error: {tmp_path / 'gone.png'}: no such file\n"


def test_verify_prints_one_line_for_a_file_whose_name_holds_a_line_break(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    _, out_dir = _generate(capsys, tmp_path)
    odd = tmp_path / "two\nlines.png"
    odd.write_bytes(sorted(out_dir.glob("*.png"))[0].read_bytes())
    code, out, err = run_cli(capsys, "verify", str(odd))
    assert code == 0, err
    assert out.count("\n") == 1, out
    assert out.startswith(f"{str(odd)!r}: valid - ")
    code, out, _ = run_cli(capsys, "verify", str(odd), "--json")
    assert json.loads(out)[0]["file"] == str(odd)  # the JSON keeps the real name

    not_image = tmp_path / "bad\rname.png"
    not_image.write_bytes(b"plain text")
    code, _, err = run_cli(capsys, "verify", str(not_image))
    assert code == 2
    assert err == f"brandloop: error: {str(not_image)!r} is not a PNG, JPEG or WebP image\n"


def _png_chunks(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, type) of each chunk of a PNG."""
    chunks, at = [], 8
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        chunks.append((at, data[at + 4 : at + 8]))
        at += 12 + length
    return chunks


def test_a_file_changed_inside_its_manifests_padding_is_invalid(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    """The manifest's own padding is not covered by the signature, so bytes written there (the
    chunk's CRC fixed) leave C2PA's checks passing; the file is still not the image the
    registry recorded for its receipt, and verify says so: invalid, never 'valid'."""
    _, out_dir = _generate(capsys, tmp_path)
    signed = sorted(out_dir.glob("*.png"))[0]
    data = bytearray(signed.read_bytes())
    at = next(offset for offset, kind in _png_chunks(bytes(data)) if kind == b"caBX")
    length = int.from_bytes(data[at : at + 4], "big")
    body = bytes(data[at + 8 : at + 8 + length])
    zeros = body.find(b"\0" * 256)
    assert zeros > 0, "no padding run in the manifest"
    payload = b"HIDDEN PAYLOAD not covered by the signature " * 4
    start = at + 8 + zeros
    data[start : start + len(payload)] = payload
    crc = zlib.crc32(bytes(data[at + 4 : at + 8 + length]))
    data[at + 8 + length : at + 12 + length] = crc.to_bytes(4, "big")
    changed = tmp_path / "changed.png"
    changed.write_bytes(bytes(data))

    code, out, err = run_cli(capsys, "verify", "--json", str(signed), str(changed))
    assert code == 6, err
    original, report = json.loads(out)
    assert original["status"] == "valid" and original["registry_bytes"] == "ok", original
    # what C2PA checks still passes: only the registry's bytes tell
    assert (report["signature"], report["hard_binding"]) == ("ok", "ok"), report
    assert report["status"] == "invalid" and report["registry_bytes"] == "failed", report
    assert report["summary"].startswith(f"{changed}: invalid (bytes differ from the registry's")
    assert "receipt matches the registry" not in report["summary"], report["summary"]
    assert any(original["sha256"][:16] in problem for problem in report["problems"]), report
    assert any("where the signature does not reach" in p for p in report["problems"]), report


def test_a_change_the_hard_binding_caught_is_not_said_to_be_beyond_the_signature(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    """An image byte flipped (its chunk's CRC fixed) breaks the hard binding: the report names
    that, and its registry line no longer says the bytes changed "where the signature does not
    reach" - a reason meant for the manifest's padding (an outside tester's report)."""
    _, out_dir = _generate(capsys, tmp_path)
    data = bytearray(sorted(out_dir.glob("*.png"))[0].read_bytes())
    at = next(offset for offset, kind in _png_chunks(bytes(data)) if kind == b"IDAT")
    length = int.from_bytes(data[at : at + 4], "big")
    data[at + 8 + length // 2] ^= 0x01
    crc = zlib.crc32(bytes(data[at + 4 : at + 8 + length]))
    data[at + 8 + length : at + 12 + length] = crc.to_bytes(4, "big")
    flipped = tmp_path / "flipped.png"
    flipped.write_bytes(bytes(data))
    code, out, err = run_cli(capsys, "verify", "--json", str(flipped))
    assert code == 6, err
    (report,) = json.loads(out)
    assert report["status"] == "invalid" and report["hard_binding"] == "failed", report
    assert not any("where the signature does not reach" in p for p in report["problems"]), report
