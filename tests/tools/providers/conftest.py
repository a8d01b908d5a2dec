"""Helpers for the adapter tests: real image bytes and MockTransport-backed clients."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import httpx
import pytest
from PIL import Image

from brandloop.policies.catalog import load_catalog

Handler = Callable[[httpx.Request], httpx.Response]


def png(width: int = 32, height: int = 32, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def b64png(width: int = 32, height: int = 32) -> str:
    return base64.b64encode(png(width, height)).decode()


@pytest.fixture
def catalog() -> list:
    return load_catalog()


def client_for(handler: Handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))
