"""``brandloop serve`` on an address it cannot listen on: one line naming the flag, exit 2 (bad
input), no banner as if serving, nothing stored (README: exit codes; errors are one line)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from brandloop.settings import Settings
from tests.api.test_cli import data_snapshot, run_cli


def test_serve_on_a_port_in_use_says_so_in_one_line(
    capsys: pytest.CaptureFixture[str], settings: Settings, data_dir: Path
) -> None:
    before = data_snapshot(data_dir)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = run_cli(capsys, "serve", "--host", "127.0.0.1", "--port", str(port))
    assert code == 2, err
    assert err == (
        f"brandloop: error: --port {port}: port {port} on 127.0.0.1 is already in use "
        "(stop what listens there, or choose another --port)\n"
    )
    assert out == ""
    assert data_snapshot(data_dir) == before


def test_serve_on_an_address_not_on_this_host_says_so_in_one_line(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    code, _, err = run_cli(capsys, "serve", "--host", "192.0.2.1", "--port", "8000")
    assert code == 2, err
    assert err.startswith("brandloop: error: --host 192.0.2.1 --port 8000: cannot listen there")
    assert err.count("\n") == 1, err
