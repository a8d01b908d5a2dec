"""Every endpoint through the real app: generations, jobs and their events, threads,
campaigns, brands, templates, runs, artifacts, models, memory, review, costs and keys."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from brandloop.artifacts import RECEIPT_KEY, read_png_text
from tests.api.http.conftest import Keys, assert_problem, brand_kit, wait_job

GEN = {
    "brief": "a steaming cup on a wooden table, morning light",
    "brand": "Acme Coffee",
    "size": "256x256",
}


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_generation_waits_for_its_result_then_run_artifact_and_receipt(
    client: TestClient, keys: Keys, acme: dict[str, Any], seed: int
) -> None:
    creator = keys["A", "creator"]
    response = client.post(
        "/v1/generations?wait=60", json={**GEN, "count": 1, "seed": seed}, headers=creator
    )
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["state"] == "succeeded"
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    result = job["result"]
    assert result["status"] == "succeeded" and len(result["images"]) == 1
    image = result["images"][0]
    assert image["path"] == f"/v1/artifacts/{image['sha256']}"  # a URL, not a file on the server

    run = client.get(job["links"]["run"], headers=keys["A", "viewer"])
    assert run.status_code == 200
    assert run.json()["run_id"] == job["run_id"] and run.json()["status"] == "succeeded"

    trace = client.get(f"/v1/runs/{job['run_id']}/trace", headers=keys["A", "viewer"]).json()
    assert trace["attempts"] and any(e["kind"] == "done" for e in trace["events"])

    receipts = client.get(f"/v1/runs/{job['run_id']}/receipts", headers=keys["A", "viewer"]).json()
    assert [r["sha256"] for r in receipts if r.get("sha256")] or receipts
    assert receipts[0]["run_id"] == job["run_id"]

    art = client.get(f"/v1/artifacts/{image['sha256']}", headers=keys["A", "viewer"])
    assert art.status_code == 200
    assert art.headers["content-type"] == "image/png"
    assert "immutable" in art.headers["cache-control"]
    assert art.headers["etag"] == f'"{image["sha256"]}"'
    assert json.loads(read_png_text(art.content)[RECEIPT_KEY])["run_id"] == job["run_id"]
    # RFC 9110 13.1.2: If-None-Match compares weakly, and * matches an image that exists
    etag = art.headers["etag"]
    for tags in (etag, f"W/{etag}", "*", f'"0", W/{etag}'):
        again = client.get(
            f"/v1/artifacts/{image['sha256']}",
            headers={**keys["A", "viewer"], "If-None-Match": tags},
        )
        assert again.status_code == 304 and again.headers["etag"] == etag, tags
        assert again.content == b""
    other = client.get(
        f"/v1/artifacts/{image['sha256']}",
        headers={**keys["A", "viewer"], "If-None-Match": 'W/"0"'},
    )
    assert other.status_code == 200 and other.content == art.content

    runs = client.get("/v1/runs", headers=keys["A", "viewer"]).json()
    assert [r["run_id"] for r in runs] == [job["run_id"]]


def test_generation_is_accepted_then_streams_its_progress(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    creator = keys["A", "creator"]
    response = client.post("/v1/generations", json=GEN, headers=creator)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["state"] in ("queued", "running")
    assert job["links"]["events"] == f"/v1/jobs/{job['id']}/events"

    with client.stream("GET", job["links"]["events"], headers=keys["A", "viewer"]) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        text = "".join(stream.iter_text())
    names = [name for name, _ in parse_sse(text)]
    for wanted in ("planned", "attempt_started", "attempt_finished", "scored", "decision", "done"):
        assert wanted in names, names
    assert names[-1] == "end"
    assert (
        names.index("planned")
        < names.index("attempt_started")
        < names.index("scored")
        < names.index("done")
    )
    assert wait_job(client, job["id"], creator)["state"] == "succeeded"

    # Last-Event-ID resumes after the events already seen
    with client.stream(
        "GET", job["links"]["events"], headers={**keys["A", "viewer"], "Last-Event-ID": "3"}
    ) as stream:
        resumed = parse_sse("".join(stream.iter_text()))
    seqs = [data["seq"] for name, data in resumed if "seq" in data]
    assert seqs and min(seqs) == 4

    listed = client.get("/v1/jobs?state=succeeded", headers=keys["A", "viewer"]).json()
    assert [j["id"] for j in listed] == [job["id"]]


def test_a_queued_jobs_run_link_says_the_run_has_not_started(
    make_client: Callable[..., TestClient], keys: Keys
) -> None:
    """``links.run`` is handed out as the job is queued, before a worker starts its run: until
    then the run is a 404 whose detail says so and names the job to follow (a client polling
    the link it was given waits rather than gives up); to another tenant, a plain 404."""
    client = make_client(workers=0)
    assert (
        client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).status_code == 201
    )
    job = client.post("/v1/generations", json=GEN, headers=keys["A", "creator"]).json()
    assert job["state"] == "queued"
    for path in (job["links"]["run"], f"{job['links']['run']}/trace"):
        detail = assert_problem(client.get(path, headers=keys["A", "viewer"]), 404, "not-found")
        assert detail["detail"] == (
            f"run {job['run_id']} has not started yet: its job {job['id']} is queued "
            f"(GET /v1/jobs/{job['id']} follows it)"
        )
        other = assert_problem(client.get(path, headers=keys["B", "viewer"]), 404, "not-found")
        assert other["detail"] == f"no run {job['run_id']}"
    cancelled = client.post(f"/v1/jobs/{job['id']}/cancel", headers=keys["A", "creator"])
    assert cancelled.status_code == 200
    run = client.get(job["links"]["run"], headers=keys["A", "viewer"])
    assert run.status_code == 200 and run.json()["status"] == "cancelled"


def test_cancel_a_queued_job_and_not_twice(
    make_client: Callable[..., TestClient], keys: Keys
) -> None:
    client = make_client(workers=0)
    assert (
        client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).status_code == 201
    )
    job = client.post("/v1/generations", json=GEN, headers=keys["A", "creator"]).json()
    assert job["state"] == "queued"
    cancelled = client.post(f"/v1/jobs/{job['id']}/cancel", headers=keys["A", "creator"])
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert_problem(
        client.post(f"/v1/jobs/{job['id']}/cancel", headers=keys["A", "creator"]), 409, "conflict"
    )


def test_cancel_a_running_job(client: TestClient, keys: Keys, acme: dict[str, Any]) -> None:
    creator = keys["A", "creator"]
    job = client.post(
        "/v1/generations", json={**GEN, "size": "1024x1024", "count": 4}, headers=creator
    ).json()
    response = client.post(f"/v1/jobs/{job['id']}/cancel", headers=creator)
    assert response.status_code in (200, 409)
    final = wait_job(client, job["id"], creator)
    if response.status_code == 200:
        assert final["state"] == "cancelled"


def test_thread_follow_up_edits_the_previous_brief_and_keeps_its_seed(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    creator = keys["A", "creator"]
    created = client.post(
        "/v1/threads",
        json={
            "brand": "Acme Coffee",
            "title": "hero",
            "message": "a mug of coffee on a wooden table",
            "size": "256x256",
        },
        headers=creator,
    )
    assert created.status_code == 201, created.text
    thread = created.json()
    first_job = thread["messages"][0]["job"]
    first = wait_job(client, first_job["id"], creator)
    seed = first["result"]["images"][0]["seed"]

    follow = client.post(
        f"/v1/threads/{thread['id']}/messages",
        json={"content": "warmer, and drop the mug"},
        headers=creator,
    )
    assert follow.status_code == 202, follow.text
    message = follow.json()["message"]
    # the revision edits the brief: the mug leaves it for the negative prompt, warmer shifts
    assert message["brief"] == "coffee on a wooden table"
    assert message["edit"]["removed"] == ["mug"] and message["edit"]["shifts"] == ["warmer"]
    assert message["edit"]["before"] == "a mug of coffee on a wooden table"
    second = wait_job(client, follow.json()["job"]["id"], creator)
    run = client.get(f"/v1/runs/{second['run_id']}", headers=creator).json()
    assert run["request"]["seed"] == seed
    assert run["request"]["size"] == "256x256"
    assert run["request"]["avoid"] == ["mug"] and run["request"]["shifts"] == ["warmer"]
    assert run["thread_id"] == thread["id"]
    trace = client.get(f"/v1/runs/{second['run_id']}/trace", headers=creator).json()
    assert all(
        "mug" not in a["prompt"] and "mug" in a["negative_prompt"] for a in trace["attempts"]
    )

    # a generation naming the thread is a follow-up too
    third = client.post(
        "/v1/generations?wait=60",
        json={"brief": "add steam", "brand": "Acme Coffee", "thread_id": thread["id"]},
        headers=creator,
    ).json()
    assert third["thread_id"] == thread["id"]

    convo = client.get(f"/v1/threads/{thread['id']}", headers=keys["A", "viewer"]).json()
    assert [m["content"] for m in convo["messages"]] == [
        "a mug of coffee on a wooden table",
        "warmer, and drop the mug",
        "add steam",
    ]
    assert convo["messages"][2]["brief"] == "coffee on a wooden table, steam"
    assert convo["messages"][2]["edit"]["added"] == ["steam"]
    assert convo["messages"][0]["job"]["result"]["images"]
    assert convo["messages"][0]["reply"].startswith("succeeded")
    assert [t["id"] for t in client.get("/v1/threads", headers=creator).json()] == [thread["id"]]


def test_a_follow_up_keeps_the_previous_turns_count(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    """docs/http-api.md (Threads): a follow-up that leaves ``count`` out keeps the previous
    turn's, through ``/messages`` and through a generation naming the thread; one that names a
    count runs with it."""
    creator = keys["A", "creator"]
    created = client.post(
        "/v1/threads",
        json={"brand": "Acme Coffee", "message": "three mugs in a row", "size": "64x64"}
        | {"count": 3, "budget_usd": 0.5},
        headers=creator,
    )
    assert created.status_code == 201, created.text
    thread = created.json()
    wait_job(client, thread["messages"][0]["job"]["id"], creator)

    def asked(job: dict[str, Any]) -> dict[str, Any]:
        run_id = wait_job(client, job["id"], creator)["run_id"]
        request: dict[str, Any] = client.get(f"/v1/runs/{run_id}", headers=creator).json()[
            "request"
        ]
        return request

    url = f"/v1/threads/{thread['id']}/messages"
    follow = client.post(url, json={"content": "brighter"}, headers=creator)
    assert follow.status_code == 202, follow.text
    request = asked(follow.json()["job"])
    assert (request["count"], request["size"], request["budget_usd"]) == (3, "64x64", 0.5)

    by_generation = client.post(
        "/v1/generations",
        json={"brief": "add steam", "brand": "Acme Coffee", "thread_id": thread["id"]},
        headers=creator,
    )
    assert by_generation.status_code == 202, by_generation.text
    assert asked(by_generation.json())["count"] == 3

    fewer = client.post(url, json={"content": "darker", "count": 1}, headers=creator)
    assert fewer.status_code == 202, fewer.text
    assert asked(fewer.json()["job"])["count"] == 1


def test_campaign_runs_its_assets_under_one_budget(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    creator = keys["A", "creator"]
    body = {
        "name": "autumn",
        "brand": "Acme Coffee",
        "budget_usd": 0.4,
        "assets": [
            {"brief": "hero banner, warm autumn light", "formats": ["256x160"], "count": 1},
            {"brief": "square post, a steaming cup", "formats": ["1:1", "128x128"], "count": 1},
        ],
    }
    created = client.post("/v1/campaigns", json=body, headers=creator)
    assert created.status_code == 202, created.text
    campaign = created.json()
    assert [(a["index"], a["format"]) for a in campaign["assets"]] == [
        (0, "256x160"),
        (1, "128x128"),
        (1, "1:1"),
    ]
    for asset in campaign["assets"]:
        wait_job(client, asset["job"]["id"], creator)
    done = client.get(f"/v1/campaigns/{campaign['id']}", headers=keys["A", "viewer"]).json()
    assert done["state"] == "done"
    assert done["progress"]["succeeded"] == 3
    assert 0 < done["spent_usd"] <= 0.4
    spread = done["consistency"]
    assert (
        spread["images"] == 3
        and 0 <= spread["palette_spread"] <= 1
        and spread["descriptor_spread"] >= 0
    )
    runs = [
        client.get(f"/v1/runs/{a['job']['run_id']}", headers=creator).json() for a in done["assets"]
    ]
    assert {r["campaign_id"] for r in runs} == {campaign["id"]}
    assert sum(r["cost_usd"] for r in runs) <= 0.4 + 1e-6
    # each asset got a share of what was left when it started, never the whole budget
    assert all(0 < r["request"]["budget_usd"] < 0.4 for r in runs)
    assert min(r["request"]["budget_usd"] for r in runs) <= round(0.4 / 3, 6)
    assert [c["id"] for c in client.get("/v1/campaigns", headers=creator).json()] == [
        campaign["id"]
    ]


def test_a_campaign_with_fewer_than_two_images_has_its_consistency_not_measured(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    """Spreads (lower is more consistent) need two images: with one, null, never a perfect 0."""
    creator = keys["A", "creator"]
    body = {
        "name": "single",
        "brand": "Acme Coffee",
        "budget_usd": 0.2,
        "assets": [{"brief": "a steaming cup", "formats": ["128x128"], "count": 1}],
    }
    campaign = client.post("/v1/campaigns", json=body, headers=creator).json()
    assert campaign["consistency"] is None  # not done yet
    for asset in campaign["assets"]:
        assert wait_job(client, asset["job"]["id"], creator)["state"] == "succeeded"
    done = client.get(f"/v1/campaigns/{campaign['id']}", headers=keys["A", "viewer"]).json()
    assert done["state"] == "done"
    assert done["consistency"] == {"images": 1, "palette_spread": None, "descriptor_spread": None}
    schema = client.get("/openapi.json").json()["components"]["schemas"]["CampaignConsistency"]
    for field in ("palette_spread", "descriptor_spread"):
        assert {"type": "null"} in schema["properties"][field]["anyOf"]
        assert "lower is more consistent" in schema["properties"][field]["description"]


def test_brands_add_update_read(client: TestClient, keys: Keys) -> None:
    admin = keys["A", "admin"]
    kit = brand_kit("nordlys-outdoor")
    created = client.post("/v1/brands", json=kit, headers=admin)
    assert created.status_code == 201
    brand = created.json()
    updated = client.post("/v1/brands", json={**kit, "tone": ["calm"]}, headers=admin)
    assert updated.status_code == 200 and updated.json()["kit"]["tone"] == ["calm"]
    assert (
        client.get(f"/v1/brands/{brand['id']}", headers=keys["A", "viewer"]).json()["name"]
        == kit["name"]
    )
    assert (
        client.get("/v1/brands/nordlys outdoor", headers=keys["A", "viewer"]).json()["id"]
        == brand["id"]
    )
    assert [b["name"] for b in client.get("/v1/brands", headers=keys["A", "viewer"]).json()] == [
        kit["name"]
    ]
    bad = client.post("/v1/brands", json={**kit, "palette": [{"hex": "red"}]}, headers=admin)
    body = assert_problem(bad, 422, "validation")
    assert body["errors"][0]["loc"][:2] == ["body", "palette"]


def test_templates_versions_review_and_labels(client: TestClient, keys: Keys) -> None:
    listed = client.get("/v1/templates", headers=keys["A", "viewer"]).json()
    assert "brand-hero" in [t["name"] for t in listed]
    added = client.post(
        "/v1/templates/brand-hero/versions",
        json={"body": "{{ brief }}, {{ palette_clause }}", "message": "shorter"},
        headers=keys["A", "creator"],
    )
    assert added.status_code == 201, added.text
    assert added.json()["version"] == 2 and added.json()["status"] == "draft"
    unknown_variable = client.post(
        "/v1/templates/brand-hero/versions",
        json={"body": "{{ brief }} {{ nope }}", "message": "typo"},
        headers=keys["A", "creator"],
    )
    assert_problem(unknown_variable, 422, "bad-input")
    escape = client.post(
        "/v1/templates/brand-hero/versions",
        json={"body": "{{ brief.__class__.__mro__ }}", "message": "escape"},
        headers=keys["A", "creator"],
    )
    assert_problem(escape, 422, "bad-input")
    queue = client.get("/v1/review", headers=keys["A", "approver"]).json()
    # a draft waits for its author to submit it, not for an approver (outside tester)
    assert "brand-hero@2" not in [t["template"] for t in queue["templates"]]
    not_in_review = client.post(
        "/v1/templates/brand-hero/versions/2/review",
        json={"decision": "approve"},
        headers=keys["A", "approver"],
    )
    assert_problem(not_in_review, 409, "conflict")
    submitted = client.post(
        "/v1/templates/brand-hero/versions/2/submit", headers=keys["A", "creator"]
    )
    assert submitted.status_code == 200 and submitted.json()["status"] == "in_review"
    queue = client.get("/v1/review", headers=keys["A", "approver"]).json()
    assert "brand-hero@2" in [t["template"] for t in queue["templates"]]
    assert_problem(
        client.put(
            "/v1/templates/brand-hero/labels/production",
            json={"weights": {"2": 1}},
            headers=keys["A", "approver"],
        ),
        409,
        "conflict",
    )
    own = client.post(
        "/v1/templates/brand-hero/versions",
        json={"body": "{{ brief }}", "message": "mine"},
        headers=keys["A", "approver"],
    ).json()
    client.post(
        f"/v1/templates/brand-hero/versions/{own['version']}/submit", headers=keys["A", "approver"]
    )
    self_approval = client.post(
        f"/v1/templates/brand-hero/versions/{own['version']}/review",
        json={"decision": "approve"},
        headers=keys["A", "approver"],
    )
    assert_problem(self_approval, 409, "conflict")
    assert "may not approve" in self_approval.json()["detail"]
    reviewed = client.post(
        "/v1/templates/brand-hero/versions/2/review",
        json={"decision": "approve"},
        headers=keys["A", "approver"],
    )
    assert reviewed.json()["status"] == "approved"
    labelled = client.put(
        "/v1/templates/brand-hero/labels/production",
        json={"weights": {"1": 0.0, "2": 1.0}},
        headers=keys["A", "approver"],
    )
    assert labelled.status_code == 200 and labelled.json()["labels"]["production"] == 2
    got = client.get("/v1/templates/brand-hero", headers=keys["A", "viewer"]).json()
    assert [v["status"] for v in got["versions"]] == ["approved", "approved", "in_review"]
    assert_problem(client.get("/v1/templates/nope", headers=keys["A", "viewer"]), 404, "not-found")


def test_models_costs_review_of_a_run(client: TestClient, keys: Keys, acme: dict[str, Any]) -> None:
    models = client.get("/v1/models", headers=keys["A", "viewer"]).json()
    assert {"procedural/draft", "procedural/studio"} <= {m["id"] for m in models}
    assert all(m["usable"] for m in models if m["provider"] == "procedural")

    job = client.post("/v1/generations?wait=60", json=GEN, headers=keys["A", "creator"]).json()
    report = client.get("/v1/costs?period=day", headers=keys["A", "viewer"]).json()
    assert report["runs"] == 1
    assert abs(report["total_usd"] - job["result"]["cost_usd"]) < 1e-9
    assert report["by_brand"] == {"Acme Coffee": report["total_usd"]}
    assert sum(report["by_model"].values()) == report["total_usd"]
    other = client.get("/v1/costs?period=day", headers=keys["B", "viewer"]).json()
    assert other["runs"] == 0 and other["total_usd"] == 0
    # a start after the end is a period with nothing in it (tests/api/http/test_contract.py)
    empty = client.get(
        "/v1/costs?period=custom&start=2026-02-01&end=2026-01-01", headers=keys["A", "viewer"]
    )
    assert empty.status_code == 200 and empty.json()["runs"] == 0

    verdict = client.post(
        f"/v1/review/runs/{job['run_id']}",
        json={"decision": "reject", "note": "too dark"},
        headers=keys["A", "approver"],
    )
    assert verdict.status_code == 200 and verdict.json()["decision"] == "reject"


def test_memory_notes_and_search(make_client: Callable[..., TestClient], keys: Keys) -> None:
    client = make_client(use_memory=True)
    assert (
        client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).status_code == 201
    )
    note = client.post(
        "/v1/memory/notes",
        json={"brand": "Acme Coffee", "text": "always warm amber light"},
        headers=keys["A", "creator"],
    )
    assert note.status_code == 201, note.text
    hits = client.get(
        "/v1/memory/search",
        params={"brand": "Acme Coffee", "q": "warm light"},
        headers=keys["A", "viewer"],
    ).json()
    assert hits[0]["text"] == "always warm amber light"
    # the note a run recalls (kept under the brand's id) is the one listed and forgotten
    listed = client.get(
        "/v1/memory/notes", params={"brand": "Acme Coffee"}, headers=keys["A", "viewer"]
    ).json()
    assert [n["id"] for n in listed] == [note.json()["id"]]
    private = client.post(
        "/v1/memory/notes",
        json={"brand": "Acme Coffee", "text": "ask ann@example.org before using red"},
        headers=keys["A", "creator"],
    ).json()
    assert private["redacted"] == ["email"] and "ann@example.org" not in json.dumps(private)
    gone = client.delete(
        f"/v1/memory/notes/{note.json()['id']}",
        params={"brand": "Acme Coffee"},
        headers=keys["A", "creator"],
    )
    assert gone.status_code == 204
    listed = client.get(
        "/v1/memory/notes", params={"brand": "Acme Coffee"}, headers=keys["A", "viewer"]
    ).json()
    assert [n["text"] for n in listed] == ["ask [redacted email] before using red"]


def test_a_blank_query_or_note_is_refused_by_the_schema_that_says_so(
    make_client: Callable[..., TestClient], keys: Keys
) -> None:
    """Memory refuses a query or note of only blank characters (``\x1d`` is blank to
    ``str.strip``); the schema must say so, or a client built from it sends what it allows and
    gets a 422 no rule explains (schemathesis found ``q=%1D``)."""
    client = make_client(use_memory=True)
    schema = client.get("/openapi.json").json()
    search = schema["paths"]["/v1/memory/search"]["get"]["parameters"]
    q = next(p for p in search if p["name"] == "q")["schema"]
    assert re.search(q["pattern"], "\x1d \t") is None and re.search(q["pattern"], " a")
    note = schema["components"]["schemas"]["NoteCreate"]["properties"]["text"]
    assert re.search(note["pattern"], "\u3000\n") is None
    client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"])
    blank = client.get(
        "/v1/memory/search", params={"brand": "Acme Coffee", "q": "\x1d"},
        headers=keys["A", "viewer"],
    )  # fmt: skip
    assert blank.status_code == 422
    assert blank.headers["content-type"].startswith("application/problem+json")


def test_a_note_too_long_is_a_validation_422_naming_the_limit(
    make_client: Callable[..., TestClient], keys: Keys
) -> None:
    """An outside tester's note of 4,001-8,000 characters passed the schema (8,000) and was a
    422 ``refused`` by moderation for its length: one limit now, the brief's, in the schema."""
    client = make_client(use_memory=True)
    schema = client.get("/openapi.json").json()["components"]["schemas"]["NoteCreate"]
    assert schema["properties"]["text"]["maxLength"] == 4000
    client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"])
    for length in (4001, 8000):
        answer = client.post(
            "/v1/memory/notes",
            json={"brand": "Acme Coffee", "text": "w" * length},
            headers=keys["A", "creator"],
        )
        body = assert_problem(answer, 422, "validation")
        assert "4000" in json.dumps(body), body
    kept = client.post(
        "/v1/memory/notes", json={"brand": "Acme Coffee", "text": "w" * 4000},
        headers=keys["A", "creator"],
    )  # fmt: skip
    assert kept.status_code == 201, kept.text


def test_a_padded_note_is_answered_as_it_is_kept(
    make_client: Callable[..., TestClient], keys: Keys
) -> None:
    """``NoteCreated.text`` is "the text kept": a padded note was answered padded, and kept
    without its padding (an outside tester)."""
    client = make_client(use_memory=True)
    client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"])
    added = client.post(
        "/v1/memory/notes", json={"brand": "Acme Coffee", "text": "  padded note  "},
        headers=keys["A", "creator"],
    )  # fmt: skip
    assert added.status_code == 201, added.text
    assert added.json()["text"] == "padded note"
    listed = client.get(
        "/v1/memory/notes", params={"brand": "Acme Coffee"}, headers=keys["A", "viewer"]
    ).json()
    assert [n["text"] for n in listed] == ["padded note"]


def test_a_note_added_over_http_is_listed_and_forgotten(
    make_client: Callable[..., TestClient], keys: Keys
) -> None:
    """Notes are kept under the brand's registry id (what runs recall); listing and forgetting
    looked under its name, so a note added here was neither listed nor forgettable."""
    client = make_client(use_memory=True)
    assert (
        client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).status_code == 201
    )
    note = client.post(
        "/v1/memory/notes",
        json={"brand": "Acme Coffee", "text": "always warm amber light"},
        headers=keys["A", "creator"],
    )
    assert note.status_code == 201, note.text
    listed = client.get(
        "/v1/memory/notes", params={"brand": "Acme Coffee"}, headers=keys["A", "viewer"]
    )
    assert [n["id"] for n in listed.json()] == [note.json()["id"]], listed.text
    gone = client.delete(
        f"/v1/memory/notes/{note.json()['id']}",
        params={"brand": "Acme Coffee"},
        headers=keys["A", "creator"],
    )
    assert gone.status_code == 204, gone.text
    hits = client.get(
        "/v1/memory/search",
        params={"brand": "Acme Coffee", "q": "warm light"},
        headers=keys["A", "viewer"],
    ).json()
    assert all(h["text"] != "always warm amber light" for h in hits)


def test_keys_admin_makes_lists_revokes(client: TestClient, keys: Keys) -> None:
    admin = keys["A", "admin"]
    made = client.post("/v1/keys", json={"role": "viewer", "name": "dashboard"}, headers=admin)
    assert made.status_code == 201
    secret = made.json()["key"]
    viewer = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/brands", headers=viewer).status_code == 200
    listed = client.get("/v1/keys", headers=admin).json()
    assert made.json()["id"] in [k["id"] for k in listed]
    assert all("key" not in k and secret not in json.dumps(k) for k in listed)
    assert client.delete(f"/v1/keys/{made.json()['id']}", headers=admin).json()["revoked_at"]
    assert_problem(client.get("/v1/brands", headers=viewer), 401, "unauthorized")


def test_health_ready_and_unknown_paths(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {
        "database": "ok",
        "chroma": "ok",
        "workers": "ok",
    }
    assert_problem(client.get("/v1/nothing"), 404, "not-found")
    assert_problem(client.delete("/v1/brands"), 405, "method-not-allowed")


def test_a_run_waiting_for_review_is_finished_by_an_approver(
    make_client: Callable[..., TestClient], keys: Keys, tmp_path: Any, monkeypatch: Any
) -> None:
    policy = tmp_path / "agent.yaml"
    policy.write_text("review:\n  mode: always\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    client = make_client()
    assert (
        client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).status_code == 201
    )
    waiting = client.post("/v1/generations?wait=60", json=GEN, headers=keys["A", "creator"])
    assert waiting.status_code == 200, waiting.text
    job = waiting.json()
    assert job["state"] == "awaiting_review" and job["result"]["images"] == []
    # what the run has spent shows while it waits, the same in the job, its result and the run
    run = client.get(f"/v1/runs/{job['run_id']}", headers=keys["A", "viewer"]).json()
    trace = client.get(f"/v1/runs/{job['run_id']}/trace", headers=keys["A", "viewer"]).json()
    accepted = [a for a in trace["attempts"] if a["outcome"] == "accepted"]
    assert job["result"]["cost_usd"] > 0 and accepted
    assert run["cost_usd"] == job["cost_usd"] == job["result"]["cost_usd"]
    assert run["cost_usd"] == round(sum(a["cost_usd"] for a in trace["attempts"]), 6)
    assert (run["attempts"], run["accepted"]) == (len(trace["attempts"]), len(accepted))
    assert run["template"] == accepted[0]["template"] != ""
    queue = client.get("/v1/review", headers=keys["A", "approver"]).json()
    assert [r["run_id"] for r in queue["runs"]] == [job["run_id"]]
    assert_problem(
        client.post(
            f"/v1/review/runs/{job['run_id']}",
            json={"decision": "approve"},
            headers=keys["A", "creator"],
        ),
        403,
        "forbidden",
    )
    verdict = client.post(
        f"/v1/review/runs/{job['run_id']}",
        json={"decision": "approve", "note": "fine"},
        headers=keys["A", "approver"],
    )
    assert verdict.status_code == 200, verdict.text
    assert verdict.json()["status"] == "succeeded"
    done = client.get(f"/v1/jobs/{job['id']}", headers=keys["A", "viewer"]).json()
    assert done["state"] == "succeeded" and len(done["result"]["images"]) == 1
    assert client.get("/v1/review", headers=keys["A", "approver"]).json()["runs"] == []
