"""Fixtures for the studio: the real app (the same one that serves /v1) on a fresh data dir,
browsers-as-clients signed in with a key or a one-time link, and runs made through the API."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.api.app import create_app
from brandloop.api.auth import create_key
from brandloop.api.config import ApiSettings
from brandloop.api.studio.sessions import create_link
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.api.http.conftest import brand_kit

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


class Studio:
    """One running app; ``browser()`` is a fresh cookie jar on it, like a new browser. Every
    browser goes through the running app's event loop, where its job workers run."""

    def __init__(self, settings: Settings, db: Database, main: TestClient) -> None:
        self.settings = settings
        self.db = db
        self.main = main

    def browser(self) -> TestClient:
        client = TestClient(self.main.app, raise_server_exceptions=False)
        client.portal = self.main.portal  # requests run on the app's own loop
        return client

    def key(self, tenant: str, role: str) -> str:
        with self.db.session() as session:
            _, key = create_key(session, tenant=tenant, role=role)
        return key

    def link(self, tenant: str, principal: str, role: str) -> str:
        with self.db.session() as session:
            return create_link(session, tenant=tenant, principal=principal, role=role)

    def signed_in_with_key(self, tenant: str, role: str) -> tuple[TestClient, str]:
        key = self.key(tenant, role)
        browser = self.browser()
        page = browser.get("/signin")
        response = browser.post(
            "/signin", data={"key": key, "csrf": csrf_of(page.text)}, follow_redirects=False
        )
        assert response.status_code == 303, response.text
        return browser, key

    def signed_in_as(self, tenant: str, principal: str, role: str) -> TestClient:
        token = self.link(tenant, principal, role)
        browser = self.browser()
        page = browser.get(f"/signin/link?token={token}")
        assert page.status_code == 200, page.text
        response = browser.post(
            "/signin/link",
            data={"token": token, "csrf": csrf_of(page.text)},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        return browser

    def post_form(
        self, browser: TestClient, page_url: str, action: str, data: dict[str, Any]
    ) -> Any:
        """Open ``page_url``, then post its form to ``action`` with the page's CSRF token."""
        page = browser.get(page_url)
        assert page.status_code == 200, page.text
        return browser.post(
            action, data={**data, "csrf": csrf_of(page.text)}, follow_redirects=False
        )


@pytest.fixture
def studio(settings: Settings, db: Database) -> Iterator[Studio]:
    app = create_app(
        settings,
        ApiSettings(workers=2, rate_limit_per_minute=100_000, rate_limit_burst=10_000),
        use_memory=False,
        database=db,
    )
    with TestClient(app, raise_server_exceptions=False) as main:  # starts the worker pool
        yield Studio(settings, db, main)


@pytest.fixture
def api(studio: Studio) -> Callable[..., Any]:
    """``api(method, path, key, json=...)``: the /v1 API of the same app."""
    client = studio.browser()

    def call(method: str, path: str, key: str, **kwargs: Any) -> Any:
        return client.request(method, path, headers={"Authorization": f"Bearer {key}"}, **kwargs)

    return call


def make_run(
    studio: Studio,
    api: Callable[..., Any],
    tenant: str = "A",
    brief: str = "a steaming mug on a wooden table",
) -> dict[str, Any]:
    """A finished run of ``tenant`` made through the API (its brand is added if needed)."""
    api("POST", "/v1/brands", studio.key(tenant, "admin"), json=brand_kit())
    key = studio.key(tenant, "creator")
    job = api(
        "POST",
        "/v1/generations?wait=60",
        key,
        json={"brief": brief, "brand": "Acme Coffee", "size": "256x256"},
    ).json()
    # the whole job in the message: pytest shortens a dict, and a rare failure needs its reason
    assert job["state"] in ("succeeded", "awaiting_review"), json.dumps(job)[:4000]
    body: dict[str, Any] = job
    return body
