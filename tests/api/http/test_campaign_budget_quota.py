"""A campaign holds its whole budget against the tenant's daily quota until its last asset
ends, so raising its limit (``brandloop campaign budget N --campaign-id``) grows that hold under
the tenant's lock, or is refused when the quota cannot cover the raise: the campaign never
spends past what the quota admitted. It once raised the limit alone, and a $0.30 campaign
against a $0.30 quota spent $0.40 (outside tester)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from brandloop.agent.budgets import limit_of, set_budget
from brandloop.api.cli import main
from brandloop.api.config import get_api_settings
from brandloop.registry import spend
from brandloop.registry.db import Database
from brandloop.settings import get_settings
from tests.api.http.conftest import Keys, brand_kit

QUOTA = 0.3


@pytest.fixture
def cli_of_tenant_a(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI acts for tenant A under the same daily quota as the service."""
    monkeypatch.setenv("BRANDLOOP_TENANT", "A")
    monkeypatch.setenv("BRANDLOOP_API_DAILY_QUOTA_USD", str(QUOTA))
    get_settings.cache_clear()
    get_api_settings.cache_clear()
    yield
    get_settings.cache_clear()
    get_api_settings.cache_clear()


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.err


def _campaign(make_client: Callable[..., TestClient], keys: Keys) -> str:
    """A $0.30 campaign of ten assets, queued (no worker runs them), holding the whole quota."""
    client = make_client(workers=0, daily_quota_usd=QUOTA)
    assert (
        client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).status_code == 201
    )
    assets = [
        {"brief": f"a cup, take {i}", "formats": ["1024x1024"], "count": 2} for i in range(10)
    ]
    body = {"name": "autumn", "brand": "Acme Coffee", "budget_usd": QUOTA, "assets": assets}
    created = client.post("/v1/campaigns", json=body, headers=keys["A", "creator"])
    assert created.status_code == 202, created.text
    campaign_id: str = created.json()["id"]
    return campaign_id


def _held(db: Database, campaign_id: str) -> tuple[float, float | None]:
    """What the tenant's quota counts now, and the campaign's limit."""
    with db.session() as session:
        used = spend.quota_used(session, tenant="A")
        limit = limit_of(session, tenant="A", scope="campaign", scope_id=campaign_id)
    return used, limit


def test_a_raise_the_quota_cannot_cover_is_refused_and_changes_nothing(
    make_client: Callable[..., TestClient],
    keys: Keys,
    db: Database,
    cli_of_tenant_a: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    campaign_id = _campaign(make_client, keys)
    assert _held(db, campaign_id) == (pytest.approx(QUOTA), pytest.approx(QUOTA))
    code, err = _cli(capsys, "campaign", "budget", "1", "--campaign-id", campaign_id)
    assert code == 2 and "daily quota" in err and len(err.strip().splitlines()) == 1, err
    assert _held(db, campaign_id) == (pytest.approx(QUOTA), pytest.approx(QUOTA))
    # a cut holds less (the rest of the quota is free again), and a raise back within it fits
    assert _cli(capsys, "campaign", "budget", "0.1", "--campaign-id", campaign_id)[0] == 0
    assert _held(db, campaign_id) == (pytest.approx(0.1), pytest.approx(0.1))
    assert _cli(capsys, "campaign", "budget", "0.3", "--campaign-id", campaign_id)[0] == 0
    assert _held(db, campaign_id) == (pytest.approx(QUOTA), pytest.approx(QUOTA))


def test_a_cut_never_holds_less_than_the_campaign_has_committed(
    make_client: Callable[..., TestClient], keys: Keys, db: Database
) -> None:
    campaign_id = _campaign(make_client, keys)
    with db.session() as session:
        spend.lock_tenant(session, "A")
        spend.reserve_call(
            session,
            tenant="A",
            run_id="run_of_the_campaign",
            campaign_id=campaign_id,
            call_key="bl-paid",
            amount_usd=0.2,
            provider="openai",
            model="openai/gpt-image-1",
            attempt_ids=[],
        )
    with db.session() as session:
        set_budget(session, tenant="A", scope="campaign", scope_id=campaign_id, limit_usd=0.05)
    assert _held(db, campaign_id) == (pytest.approx(0.2), pytest.approx(0.05))


@pytest.mark.parametrize("attempt", range(3))
def test_a_raise_and_a_job_at_once_never_pass_the_quota(
    make_client: Callable[..., TestClient], keys: Keys, db: Database, attempt: int
) -> None:
    """The campaign is cut to $0.10, then raised back to $0.30 while another $0.20 job is
    admitted at the same moment: the quota has room for one of the two."""
    campaign_id = _campaign(make_client, keys)
    with db.session() as session:
        set_budget(session, tenant="A", scope="campaign", scope_id=campaign_id, limit_usd=0.1)
    start = threading.Barrier(2)

    def raise_campaign() -> str:
        start.wait()
        try:
            with db.session() as session:
                set_budget(
                    session,
                    tenant="A",
                    scope="campaign",
                    scope_id=campaign_id,
                    limit_usd=0.3,
                    quota_usd=QUOTA,
                )
        except spend.QuotaExceededError:
            return "refused"
        return "raised"

    def admit_job() -> str:
        start.wait()
        try:
            with db.session() as session:
                spend.hold_admission(
                    session, tenant="A", amount_usd=0.2, quota_usd=QUOTA, run_id=f"run_{attempt}"
                )
        except spend.QuotaExceededError:
            return "refused"
        return "admitted"

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = sorted(f.result() for f in [pool.submit(raise_campaign), pool.submit(admit_job)])
    assert answers in (["admitted", "refused"], ["raised", "refused"]), answers
    used, limit = _held(db, campaign_id)
    assert used <= QUOTA + 1e-9
    assert limit == pytest.approx(0.3 if "raised" in answers else 0.1)
