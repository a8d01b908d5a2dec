"""A studio session proves a reviewer's role only while the key it was signed in with is live:
once that key is revoked (at `DELETE /v1/keys/{id}` or `brandloop keys revoke`) the principal is
no longer someone a review can be assigned to, as the session itself is refused at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from brandloop.domain import utcnow
from brandloop.registry.models_service import ApiKeyRow
from brandloop.registry.models_studio import ReviewAssignmentRow, StudioSessionRow
from tests.api.http.conftest import brand_kit
from tests.api.studio.conftest import Studio, csrf_of
from tests.api.test_cli import run_cli


@pytest.fixture
def always_review(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policy = tmp_path / "agent.yaml"
    policy.write_text("review:\n  mode: always\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))


def _waiting_run(studio: Studio, api: Callable[..., Any]) -> str:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    job = api(
        "POST",
        "/v1/generations?wait=60",
        studio.key("A", "creator"),
        json={"brief": "a steaming cup", "brand": "Acme Coffee", "size": "256x256"},
    ).json()
    assert job["state"] == "awaiting_review", job
    return str(job["run_id"])


def _signed_in_approver(studio: Studio, api: Callable[..., Any], name: str) -> str:
    """A new principal's approver key, used once to sign in to the studio; its id."""
    made = api(
        "POST", "/v1/keys", studio.key("A", "admin"), json={"role": "approver", "principal": name}
    )
    assert made.status_code == 201, made.text
    browser = studio.browser()
    page = browser.get("/signin")
    signed = browser.post(
        "/signin",
        data={"key": made.json()["key"], "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert signed.status_code == 303, signed.text
    return str(made.json()["id"])


def _assign(studio: Studio, api: Callable[..., Any], run_id: str, name: str) -> Any:
    return api(
        "POST",
        f"/v1/review/runs/{run_id}/assign",
        studio.key("A", "approver"),
        json={"assignee": name},
    )


def _refused(response: Any, name: str) -> None:
    assert response.status_code == 422, response.text
    assert f"no reviewer '{name}'" in response.json()["detail"]


def test_a_key_revoked_at_the_api_ends_its_sessions_reviewer_role(
    studio: Studio, api: Callable[..., Any], always_review: None
) -> None:
    run_id = _waiting_run(studio, api)
    key_id = _signed_in_approver(studio, api, "rev")
    revoked = api("DELETE", f"/v1/keys/{key_id}", studio.key("A", "admin"))
    assert revoked.status_code == 200, revoked.text
    _refused(_assign(studio, api, run_id, "rev"), "rev")
    with studio.db.session() as session:
        assert session.query(ReviewAssignmentRow).count() == 0
        rows = session.query(StudioSessionRow).filter_by(principal="rev").all()
        assert rows and all(r.revoked_at is not None for r in rows)
    # a reviewer signed in with a live key is still one
    _signed_in_approver(studio, api, "live")
    assert _assign(studio, api, run_id, "live").status_code == 204


def test_a_key_revoked_with_the_cli_ends_its_sessions_reviewer_role(
    studio: Studio,
    api: Callable[..., Any],
    always_review: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_id = _waiting_run(studio, api)
    key_id = _signed_in_approver(studio, api, "rev")
    code, _, err = run_cli(capsys, "keys", "revoke", "--tenant", "A", key_id)
    assert code == 0, err
    _refused(_assign(studio, api, run_id, "rev"), "rev")
    with studio.db.session() as session:
        rows = session.query(StudioSessionRow).filter_by(principal="rev").all()
        assert rows and all(r.revoked_at is not None for r in rows)


def test_a_session_left_open_by_a_key_revoked_before_is_no_proof_of_a_role(
    studio: Studio, api: Callable[..., Any], always_review: None
) -> None:
    """Sessions whose key was revoked before revoking ended them (their rows still open)."""
    run_id = _waiting_run(studio, api)
    key_id = _signed_in_approver(studio, api, "old")
    with studio.db.session() as session:
        row = session.get(ApiKeyRow, key_id)
        assert row is not None
        row.revoked_at = utcnow()  # as a revoke before this release left it: sessions open
    _refused(_assign(studio, api, run_id, "old"), "old")
