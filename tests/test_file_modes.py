"""Files brandloop writes whole (``atomic_write``: exports, eval reports and manifests, images)
get the mode a new file gets under the process's umask, as ``open`` would give them: a
temporary file is 0600, and an export meant for Git kept it (outside tester). A file written
with a mode of its own (the development signing key) has it before it takes its name."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from brandloop.artifacts import atomic_write
from brandloop.tools.credentials.devca import KEY_FILE, dev_credentials


@pytest.fixture
def umask_022() -> Iterator[None]:
    before = os.umask(0o022)
    yield
    os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_file_written_whole_has_the_umasks_mode(tmp_path: Path, umask_022: None) -> None:
    atomic_write(tmp_path / "export.yaml", b"name: x\n")
    assert _mode(tmp_path / "export.yaml") == 0o644
    os.umask(0o077)
    atomic_write(tmp_path / "private.yaml", b"name: y\n")
    assert _mode(tmp_path / "private.yaml") == 0o600


def test_a_mode_given_is_the_files_and_the_signing_key_is_never_readable(
    tmp_path: Path, umask_022: None
) -> None:
    atomic_write(tmp_path / "secret.pem", b"k", mode=0o600)
    assert _mode(tmp_path / "secret.pem") == 0o600
    dev_credentials(tmp_path)
    assert _mode(tmp_path / "c2pa" / KEY_FILE) == 0o600
