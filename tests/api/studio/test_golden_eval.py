"""The golden suite run from the Evals page: it runs with the tenant's own template versions
(a fresh eval registry holds only the shipped ones, so the suite carries them), and what would
fail every case is refused with a page naming it before anything runs or is stored."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.api.http.conftest import brand_kit
from tests.api.studio.conftest import Studio, csrf_of

ROOT = Path(__file__).resolve().parents[3]
BODY = "{{ brief }}, in the tenant's own house style, {{ palette_clause }}"


def own_template(studio: Studio, api: Callable[..., Any], tenant: str = "A") -> None:
    """``acme-hero@1``: a template only this tenant has, written by one principal and
    approved by another."""
    creator, approver = studio.key(tenant, "creator"), studio.key(tenant, "approver")
    made = api("POST", "/v1/templates/acme-hero/versions", creator, json={"body": BODY})
    assert made.status_code == 201 and made.json()["version"] == 1, made.text
    assert api("POST", "/v1/templates/acme-hero/versions/1/submit", creator).status_code == 200
    approved = api(
        "POST",
        "/v1/templates/acme-hero/versions/1/review",
        approver,
        json={"decision": "approve"},
    )
    assert approved.json()["status"] == "approved", approved.text


def golden_dir(studio: Studio, tenant: str = "A") -> Path:
    return studio.settings.data_dir / "evals" / "tenants" / tenant


def old_golden_suite(studio: Studio, cases: list[dict[str, Any]]) -> Path:
    """A golden suite as the studio wrote it before it carried template versions."""
    directory = golden_dir(studio)
    (directory / "brands").mkdir(parents=True)
    kit = ROOT / "examples" / "brands" / "acme-coffee.yaml"
    (directory / "brands" / "acme-coffee.yaml").write_bytes(kit.read_bytes())
    document = {
        "format": "brandloop.eval-suite/1",
        "name": "golden",
        "version": 1,
        "brands": ["brands/acme-coffee.yaml"],
        "targets": [{"name": "default"}],
        "cases": cases,
    }
    path = directory / "golden.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def case(case_id: str, **request: Any) -> dict[str, Any]:
    return {
        "id": case_id,
        "brief": "a steaming mug on a wooden table",
        "brand": "Acme Coffee",
        "request": {"size": "128x128", "seed": 5, **request},
        "assertions": [{"kind": "max_cost", "max_usd": 1}],
        "tags": ["golden"],
    }


def run_golden(studio: Studio, browser: Any) -> Any:
    return studio.post_form(browser, "/evals", "/evals/golden/run", {})


def finished_result_set(browser: Any) -> str:
    """The golden result set once its run is over (the page stops saying Running…)."""
    for _ in range(1200):
        page = browser.get("/evals").text
        if "Running…" not in page:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the golden run did not finish in two minutes")
    assert "stopped with an error" not in page, page
    found = re.search(r'href="/evals/(golden-v\d+-\d{8}T\d{6})"', page)
    assert found, page
    return found.group(1)


def results(studio: Studio, name: str) -> list[dict[str, Any]]:
    files = sorted((golden_dir(studio) / "runs" / name / "cases").glob("*/*.json"))
    return [json.loads(f.read_text(encoding="utf-8")) for f in files]


def test_an_image_made_with_the_tenants_own_template_is_a_golden_case_that_runs(
    studio: Studio, api: Callable[..., Any]
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    own_template(studio, api)
    job = api(
        "POST",
        "/v1/generations?wait=60",
        studio.key("A", "creator"),
        json={"brief": "a steaming mug on a wooden table", "brand": "Acme Coffee",
              "size": "128x128", "seed": 5, "template": "acme-hero@1"},
    ).json()  # fmt: skip
    assert job["state"] == "succeeded", json.dumps(job)[:2000]
    run_id = job["run_id"]
    lee = studio.signed_in_as("A", "lee", "approver")
    page = lee.get(f"/review/{run_id}").text
    (sha,) = sorted(set(re.findall(r'name="sha256" value="([0-9a-f]{64})"', page)))
    rated = lee.post(
        f"/review/{run_id}/rubric",
        data={"csrf": csrf_of(page), "sha256": sha, "on_brand": "5", "usable": "yes"},
        follow_redirects=False,
    )
    assert rated.status_code == 303, rated.text
    added = lee.post(
        f"/review/{run_id}/golden",
        data={"csrf": csrf_of(page), "sha256": sha},
        follow_redirects=False,
    )
    assert added.status_code == 303, added.text
    # the suite carries the version its case names, as a template file beside it
    suite = yaml.safe_load((golden_dir(studio) / "golden.yaml").read_text(encoding="utf-8"))
    assert suite["cases"][0]["request"]["template"] == "acme-hero@1"
    assert suite["targets"] == [{"name": "default", "templates": ["templates/acme-hero@1.yaml"]}]
    carried = yaml.safe_load((golden_dir(studio) / "templates" / "acme-hero@1.yaml").read_text())
    assert (carried["name"], carried["version"], carried["body"]) == ("acme-hero", 1, BODY)

    ran = run_golden(studio, lee)
    assert ran.status_code == 303 and ran.headers["location"] == "/evals", ran.text
    name = finished_result_set(lee)
    (result,) = results(studio, name)
    assert result["error"] is None, result["error"]
    assert {a["template"] for a in result["attempts"]} == {"acme-hero@1"}
    opened = lee.get(f"/evals/{name}")
    assert opened.status_code == 200 and "golden v1 · 1 execution(s)" in opened.text
    # the same brief, seed, template and model made an image at least as good again
    assert "100.0% (1/1)" in opened.text, opened.text


def test_a_golden_suite_from_before_gets_the_tenants_template_versions_and_runs(
    studio: Studio, api: Callable[..., Any]
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    own_template(studio, api)
    path = old_golden_suite(studio, [case("golden-0001", template="acme-hero@1")])
    ana = studio.signed_in_as("A", "ana", "approver")
    ran = run_golden(studio, ana)
    assert ran.status_code == 303, ran.text
    suite = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert suite["targets"] == [{"name": "default", "templates": ["templates/acme-hero@1.yaml"]}]
    assert suite["version"] == 1, "the cases did not change"
    (result,) = results(studio, finished_result_set(ana))
    assert result["error"] is None, result["error"]
    assert {a["template"] for a in result["attempts"]} == {"acme-hero@1"}


def test_a_golden_suite_naming_what_does_not_exist_is_refused_before_anything_runs(
    studio: Studio, api: Callable[..., Any]
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    own_template(studio, api)
    path = old_golden_suite(
        studio,
        [
            case("golden-0001", template="acme-hero@1"),  # the tenant has it: fine alone
            case("golden-0002", template="acme-hero@7"),
            case("golden-0003", model="nope/none"),
        ],
    )
    before = path.read_bytes()
    ana = studio.signed_in_as("A", "ana", "approver")
    refused = run_golden(studio, ana)
    assert refused.status_code == 422, refused.text
    text = refused.text
    assert "the golden suite was not run and nothing was stored" in text, text
    assert "golden-0002" in text and "acme-hero has no version 7" in text, text
    assert "golden-0003" in text and "unknown model &#39;nope/none&#39;" in text, text
    assert "this tenant&#39;s registry does not hold acme-hero@7 either" in text, text
    # nothing ran, nothing was stored: no result set, the suite as it was, no template copied
    assert path.read_bytes() == before
    assert not (golden_dir(studio) / "runs").exists()
    assert not (golden_dir(studio) / "templates").exists()
    page = ana.get("/evals").text
    assert "Running…" not in page and "No result sets yet" in page
    # a template named by label is not carried: a fresh registry resolves no label of it
    old = golden_dir(studio)
    for leftover in ("golden.yaml", "brands/acme-coffee.yaml"):
        (old / leftover).unlink()
    (old / "brands").rmdir()
    old_golden_suite(studio, [case("golden-0004", template="acme-hero:production")])
    by_label = run_golden(studio, ana)
    assert by_label.status_code == 422, by_label.text
    assert "acme-hero:production names a template of this tenant&#39;s by label" in by_label.text
    assert "name a version (acme-hero@N)" in by_label.text, by_label.text


def test_a_golden_case_of_a_brand_that_requires_review_passes_and_holds_no_review(
    studio: Studio, api: Callable[..., Any], tmp_path: Path, monkeypatch: Any
) -> None:
    """Outside tester: with ``brand_review: {acme-coffee: {mode: always}}`` the golden suite
    always failed (its run waited for a review nobody can give, with nothing accepted); an eval
    run measures the agent, so it is not held for review and none waits in the queue."""
    policy = tmp_path / "agent.yaml"
    policy.write_text("brand_review: {acme-coffee: {mode: always}}\n", encoding="utf-8")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    job = api(
        "POST",
        "/v1/generations?wait=60",
        studio.key("A", "creator"),
        json={"brief": "a steaming mug on a wooden table", "brand": "Acme Coffee",
              "size": "256x256", "seed": 5, "template": "brand-hero@1"},
    ).json()  # fmt: skip
    assert job["state"] == "awaiting_review", json.dumps(job)[:2000]
    run_id = job["run_id"]
    lee = studio.signed_in_as("A", "lee", "approver")
    page = lee.get(f"/review/{run_id}").text
    approved = lee.post(
        f"/review/{run_id}/decision",
        data={"csrf": csrf_of(page), "decision": "approve", "note": "on brand"},
        follow_redirects=False,
    )
    assert approved.status_code == 303, approved.text
    page = lee.get(f"/review/{run_id}").text
    (sha,) = sorted(set(re.findall(r'name="sha256" value="([0-9a-f]{64})"', page)))
    for action, form in (("rubric", {"on_brand": "5", "usable": "yes"}), ("golden", {})):
        done = lee.post(
            f"/review/{run_id}/{action}",
            data={"csrf": csrf_of(page), "sha256": sha, **form},
            follow_redirects=False,
        )
        assert done.status_code == 303, (action, done.text)
    queue = lee.get("/review").text
    assert run_id not in queue

    assert run_golden(studio, lee).status_code == 303
    name = finished_result_set(lee)
    (result,) = results(studio, name)
    assert result["status"] == "succeeded" and result["accepted"] == 1, result["reason"]
    assert result["review_not_applied"] == "always (brand acme-coffee)"
    manifest = json.loads((golden_dir(studio) / "runs" / name / "manifest.json").read_text())
    assert manifest["review"] == "not applied"
    opened = lee.get(f"/evals/{name}").text
    assert "GATE PASSED" in opened and "100.0% (1/1)" in opened, opened
    # nothing waits for a reviewer: not in the tenant's queue, nor in the eval's own registry
    assert lee.get("/review").text == queue
    held = api("GET", "/v1/runs?status=awaiting_review", studio.key("A", "viewer")).json()
    assert held == [], "no run waits in the tenant's registry"
