"""A studio form keeps the API's rule for credentials (docs/http-api.md, docs/studio.md): a chat
message or title holding a configured credential is a 422 page naming the field, never the
value, checked before the page's code runs, so no thread or job is stored."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from brandloop.registry.models_service import JobRow, ThreadRow
from brandloop.settings import Settings, get_settings
from tests.api.http.conftest import brand_kit
from tests.api.studio.conftest import Studio, csrf_of
from tests.databases import stored_anywhere

OPENAI_KEY = "sk-test-t25dSecretValue9876"


@pytest.fixture
def settings(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("BRANDLOOP_OPENAI_API_KEY", OPENAI_KEY)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def test_a_chat_message_or_title_holding_a_configured_key_is_a_422_page(
    studio: Studio, api: Callable[..., Any]
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    ana = studio.signed_in_as("A", "ana", "creator")
    token = csrf_of(ana.get("/chat").text)
    for data, field in (
        ({"title": "t", "message": f"a cup with the label {OPENAI_KEY} on it"}, "Brief"),
        ({"title": f"key {OPENAI_KEY}", "message": "a cup"}, "Title"),
    ):
        page = ana.post(
            "/chat", data={"csrf": token, "brand": "Acme Coffee", "size": "256x256", **data}
        )
        assert page.status_code == 422, page.text
        assert f"{field}: holds a configured credential" in page.text
        assert OPENAI_KEY not in page.text and "Traceback" not in page.text
    with studio.db.session() as session:
        assert session.query(ThreadRow).count() == 0
        assert session.query(JobRow).count() == 0
    assert stored_anywhere(studio.db, OPENAI_KEY) == []


def test_a_chat_message_or_title_holding_any_api_key_is_a_422_page_and_sign_in_still_works(
    studio: Studio, api: Callable[..., Any]
) -> None:
    """Another principal's key, another tenant's, a revoked one: the same page, naming the
    field and never whose key it is (docs/studio.md); the sign-in form, which carries a key by
    design, is not refused."""
    from brandloop.api.auth import create_key, revoke_key

    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    typed = []
    with studio.db.session() as session:
        for tenant, revoked in (("A", False), ("B", False), ("A", True)):
            row, key = create_key(session, tenant=tenant, role="creator", principal="bo")
            if revoked:
                revoke_key(session, row=row, actor="test")
            typed.append(key)
    ana = studio.signed_in_as("A", "ana", "creator")
    token = csrf_of(ana.get("/chat").text)
    for key in typed:
        for data, field in (
            ({"title": "t", "message": f"a cup labelled {key}"}, "Brief"),
            ({"title": f"key {key}", "message": "a cup"}, "Title"),
        ):
            page = ana.post(
                "/chat", data={"csrf": token, "brand": "Acme Coffee", "size": "256x256", **data}
            )
            assert page.status_code == 422, page.text
            assert f"{field}: holds an API key" in page.text
            assert key[16:] not in page.text and key[:15] not in page.text
    with studio.db.session() as session:
        assert session.query(ThreadRow).count() == 0
        assert session.query(JobRow).count() == 0
    assert all(stored_anywhere(studio.db, key[16:]) == [] for key in typed)
    browser, _ = studio.signed_in_with_key("A", "creator")  # a key in the sign-in form
    assert browser.get("/chat").status_code == 200


def test_a_form_holding_the_signed_in_key_or_session_is_a_422_page(
    studio: Studio, api: Callable[..., Any]
) -> None:
    """The session's API key is the key the request carries: the API refuses a body holding
    it (422), so every studio form does too, and stores nothing. The session cookie as well."""
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    ana, key = studio.signed_in_with_key("A", "admin")
    cookie = ana.cookies.get("bl_session")
    assert cookie
    token = csrf_of(ana.get("/chat").text)
    forms: list[tuple[str, dict[str, str], str]] = [
        (
            "/chat",
            {"brand": "Acme Coffee", "size": "256x256", "title": "t",
             "message": f"a cup labelled {key}"},
            "Brief",
        ),
        (
            "/chat",
            {"brand": "Acme Coffee", "size": "256x256", "title": f"t{key}x", "message": "a cup"},
            "Title",
        ),
        ("/brands/Acme Coffee/notes", {"text": f"note {key}"}, "New note"),
        ("/brands/Acme Coffee/notes", {"text": f"note {cookie}"}, "New note"),
        ("/templates/brand-hero/versions", {"body": f"a {{subject}} {key}"}, "Body"),
    ]  # fmt: skip
    for action, data, field in forms:
        page = ana.post(action, data={"csrf": token, **data}, follow_redirects=False)
        assert page.status_code == 422, (action, page.status_code, page.text[:300])
        assert f"{field}: holds a configured credential or this request" in page.text
        assert key not in page.text and cookie not in page.text
    with studio.db.session() as session:
        assert session.query(ThreadRow).count() == 0
        assert session.query(JobRow).count() == 0
    assert stored_anywhere(studio.db, key) == []
    # the API answers the same for the same key in a note
    note = api("POST", "/v1/memory/notes", key, json={"brand": "Acme Coffee", "text": f"n {key}"})
    assert note.status_code == 422, note.text
    # another key's text is not this request's: the form goes on to the page's own code
    other = studio.key("A", "viewer")
    page = ana.post(
        "/chat",
        data={"csrf": token, "brand": "Acme Coffee", "size": "256x256", "title": "t",
              "message": f"a cup {other[:20]}"},
        follow_redirects=False,
    )  # fmt: skip
    assert page.status_code == 303, page.text[:300]
