"""The studio shows a run not finished at what it has cost so far, as the API does (tests/api/
http/test_job_cost_so_far.py): the gallery's card, the run page and the campaign board (its
spend and each asset) say what the spend ledger counts for the run - its billed call, and the
call in flight at its whole reservation - not the $0 its row holds until it ends; once it ends,
its settled cost. On SQLite and PostgreSQL. The provider is scripted per call (the outside
world): it refuses a call (billed), then waits until the test lets it go.
"""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from brandloop.registry.db import Database
from brandloop.registry.types import usd
from brandloop.settings import Settings
from tests.api.http.clients import client_with
from tests.api.http.conftest import Keys, brand_kit, wait_job
from tests.api.http.test_cancel_and_resume import BODY, PRICE, ScriptedProvider, _wait
from tests.api.http.test_costs_while_running import _committed
from tests.api.studio.conftest import Studio
from tests.databases import db_on_both, settings_on_both

__all__ = ["db_on_both", "settings_on_both"]


def _card(browser: TestClient, run_id: str) -> str:
    """The gallery's card of ``run_id``."""
    page = browser.get("/runs")
    assert page.status_code == 200, page.text
    (card,) = [c for c in re.findall(r"<li class=\"card run-card\">.*?</li>", page.text, re.S)
               if run_id in c]  # fmt: skip
    return card


def _run_summary(browser: TestClient, run_id: str) -> str:
    page = browser.get(f"/runs/{run_id}")
    assert page.status_code == 200, page.text
    found = re.search(r"<section class=\"summary card\".*?</p>", page.text, re.S)
    assert found is not None, page.text
    return found[0]


def test_the_gallery_and_the_run_page_show_a_running_runs_cost_so_far(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    provider = ScriptedProvider("refuse", "hang")
    with client_with(settings, db, provider, workers=1) as client:
        admin = keys["A", "admin"]
        assert client.post("/v1/brands", json=brand_kit(), headers=admin).is_success
        job = client.post("/v1/generations", json={**BODY, "budget_usd": 0.5}, headers=admin)
        assert job.status_code == 202, job.text
        job_id, run_id = job.json()["id"], job.json()["run_id"]
        _wait(provider.hanging.is_set, "the second call")  # one call billed, one in flight
        browser = Studio(settings, db, client).signed_in_as("A", "ana", "viewer")

        spent = _committed(db, "A", run_id)
        assert spent > PRICE
        card = _card(browser, run_id)
        assert "running" in card and f"Acme Coffee · {usd(spent)}</p>" in card, card
        summary = _run_summary(browser, run_id)
        assert f"cost <strong>{usd(spent)}</strong>" in summary, summary

        provider.release.set()
        assert wait_job(client, job_id, admin)["state"] == "succeeded"
        settled = _committed(db, "A", run_id)
        assert f"Acme Coffee · {usd(settled)}</p>" in _card(browser, run_id)
        assert f"cost <strong>{usd(settled)}</strong>" in _run_summary(browser, run_id)


def test_the_campaign_board_shows_a_running_assets_cost_so_far(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    provider = ScriptedProvider("refuse", "hang")
    with client_with(settings, db, provider, workers=1) as client:
        admin = keys["A", "admin"]
        assert client.post("/v1/brands", json=brand_kit(), headers=admin).is_success
        body = {
            "name": "so far",
            "brand": "Acme Coffee",
            "budget_usd": 0.5,
            "assets": [{"brief": BODY["brief"], "formats": ["256x256"], "count": 1}],
        }
        created = client.post("/v1/campaigns", json=body, headers=admin)
        assert created.status_code == 202, created.text
        campaign = created.json()
        (asset,) = campaign["assets"]
        _wait(provider.hanging.is_set, "the second call")
        browser = Studio(settings, db, client).signed_in_as("A", "ana", "viewer")

        spent = _committed(db, "A", asset["job"]["run_id"])
        assert spent > PRICE
        board = browser.get(f"/campaigns/{campaign['id']}")
        assert board.status_code == 200, board.text
        assert f"spend {usd(spent)} of" in board.text, board.text
        assert f' · {usd(spent)} · <a href="/runs/{asset["job"]["run_id"]}">' in board.text
        listed = browser.get("/campaigns")
        assert f"Spend {usd(spent)} of" in listed.text, listed.text

        provider.release.set()
        assert wait_job(client, asset["job"]["id"], admin)["state"] == "succeeded"
        settled = _committed(db, "A", asset["job"]["run_id"])
        board = browser.get(f"/campaigns/{campaign['id']}")
        assert f"spend {usd(settled)} of" in board.text
        assert f' · {usd(settled)} · <a href="/runs/{asset["job"]["run_id"]}">' in board.text
