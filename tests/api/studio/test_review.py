"""The Review queue and Judge agreement: approve/reject with a note under the four-eyes rule,
assignment, a rubric per image, pairwise mode, golden eval cases, and the agreement figure the
page, `GET /v1/review/agreement` and `brandloop review agreement` all give."""

from __future__ import annotations

import hashlib
import html
import json
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from brandloop.api import reviews
from brandloop.domain import BrandKit
from brandloop.evals.loader import load_suite
from brandloop.registry import crud
from brandloop.registry.models import AttemptRow, RunRow
from brandloop.registry.models_studio import PairwiseJudgementRow
from brandloop.settings import get_settings
from tests.api.http.conftest import brand_kit
from tests.api.studio.conftest import Studio, csrf_of
from tests.api.test_cli import run_cli


@pytest.fixture
def always_review(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policy = tmp_path / "agent.yaml"
    policy.write_text("review:\n  mode: always\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))


def _waiting_run(studio: Studio, api: Callable[..., Any], key: str, seed: int = 3) -> str:
    job = api(
        "POST",
        "/v1/generations?wait=60",
        key,
        json={"brief": "a steaming cup", "brand": "Acme Coffee", "size": "256x256", "seed": seed},
    ).json()
    assert job["state"] == "awaiting_review", job
    return str(job["run_id"])


def _shas(studio: Studio, run_id: str, outcome: str) -> list[str]:
    """The images the run's attempts with ``outcome`` made, from the registry."""
    with studio.db.session() as session:
        return sorted(
            {
                str(sha)
                for sha in session.scalars(
                    select(AttemptRow.artifact_sha256).where(
                        AttemptRow.run_id == run_id,
                        AttemptRow.outcome == outcome,
                        AttemptRow.artifact_sha256.is_not(None),
                    )
                )
            }
        )


def test_approve_a_review_item_and_the_run_finishes_under_four_eyes(
    studio: Studio, api: Callable[..., Any], always_review: None
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    cara = studio.signed_in_as("A", "cara", "approver")
    home = cara.get("/chat")
    thread = cara.post(
        "/chat",
        data={"csrf": csrf_of(home.text), "brand": "Acme Coffee", "message": "a steaming cup",
              "size": "256x256"},
        follow_redirects=False,
    ).headers["location"]  # fmt: skip
    lee = studio.signed_in_as("A", "lee", "approver")
    for _ in range(600):  # the live page settles once the run waits for review
        if "review it</a>" in cara.get(thread).text:
            break
        time.sleep(0.1)
    queue = lee.get("/review").text
    found = re.search(r'href="/review/(run_\w+)"', queue)
    assert found, "the run never reached the review queue"
    run_id = found.group(1)
    assert "Asked by cara" in queue
    # the requester is refused (four eyes), and the run still waits
    page = cara.get(f"/review/{run_id}")
    assert "Four eyes" in page.text and "/thumbs/1024/" in page.text
    refused = cara.post(
        f"/review/{run_id}/decision",
        data={"csrf": csrf_of(page.text), "decision": "approve", "note": "mine"},
    )
    assert refused.status_code == 409 and "four eyes" in refused.text
    assert "awaiting review" in cara.get(f"/runs/{run_id}").text
    # another approver approves with a note; the run finishes and delivers
    page = lee.get(f"/review/{run_id}")
    assert 'data-shortcut="a"' in page.text and 'data-shortcut="r"' in page.text
    done = lee.post(
        f"/review/{run_id}/decision",
        data={"csrf": csrf_of(page.text), "decision": "approve", "note": "on brand"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == f"/runs/{run_id}"
    run_page = lee.get(f"/runs/{run_id}").text
    assert "status-succeeded" in run_page and "approved by lee: on brand" in run_page
    assert run_id not in lee.get("/review").text
    assert "succeeded" in cara.get(thread).text


def test_the_api_refuses_the_requesters_own_verdict(
    studio: Studio, api: Callable[..., Any], always_review: None
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    own = studio.key("A", "approver")
    run_id = _waiting_run(studio, api, own)
    refused = api("POST", f"/v1/review/runs/{run_id}", own, json={"decision": "approve"})
    assert refused.status_code == 409 and "four eyes" in refused.json()["detail"]
    other = studio.key("A", "approver")
    ok = api("POST", f"/v1/review/runs/{run_id}", other, json={"decision": "reject", "note": "no"})
    assert ok.status_code == 200 and ok.json()["status"] in ("failed", "partial", "succeeded")


def test_assign_rate_pairwise_golden_and_agreement(
    studio: Studio,
    api: Callable[..., Any],
    always_review: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    creator = studio.key("A", "creator")
    runs = [_waiting_run(studio, api, creator, seed=s) for s in (3, 4)]
    lee = studio.signed_in_as("A", "lee", "approver")
    page = lee.get(f"/review/{runs[0]}")
    for nobody in ("nobody-here", "\u0430na"):  # the API's rule: only a reviewer of the tenant
        refused = lee.post(
            f"/review/{runs[0]}/assign",
            data={"csrf": csrf_of(page.text), "assignee": nobody},
            follow_redirects=False,
        )
        assert refused.status_code == 422, refused.text
        assert 'id="verdict"' in refused.text  # the review page again
        assert f'value="{html.escape(nobody)}"' in refused.text  # what was typed, kept
    assigned = lee.post(
        f"/review/{runs[0]}/assign",
        data={"csrf": csrf_of(page.text), "assignee": " lee "},
        follow_redirects=False,
    )
    assert assigned.status_code == 303
    mine = lee.get("/review?mine=true").text
    assert runs[0] in mine and runs[1] not in mine
    # a rubric per image; a second save replaces the first
    page = lee.get(f"/review/{runs[0]}").text
    shas = _shas(studio, runs[0], "accepted")
    assert shas and all(f'name="sha256" value="{sha}"' in page for sha in shas)
    for usable in ("yes", "no"):
        saved = lee.post(
            f"/review/{runs[0]}/rubric",
            data={"csrf": csrf_of(page), "sha256": shas[0], "on_brand": "2", "usable": usable,
                  "note": "too dark"},
            follow_redirects=False,
        )  # fmt: skip
        assert saved.status_code == 303
    page = lee.get(f"/review/{runs[0]}").text
    assert page.count("lee: on-brand 2/5, not usable") == 1
    bad = lee.post(
        f"/review/{runs[0]}/rubric",
        data={"csrf": csrf_of(page), "sha256": shas[0], "on_brand": "9", "usable": "yes"},
    )
    assert bad.status_code == 422
    # golden: only an image of an approved run that reviewers found usable; one action writes a
    # case the loader accepts
    approved = lee.post(
        f"/review/{runs[0]}/decision",
        data={"csrf": csrf_of(page), "decision": "approve"},
        follow_redirects=False,
    )
    assert approved.status_code == 303, approved.text
    page = lee.get(f"/review/{runs[0]}").text
    refused = lee.post(f"/review/{runs[0]}/golden", data={"csrf": csrf_of(page), "sha256": shas[0]})
    assert refused.status_code == 409 and "usable" in refused.text
    cleo = studio.signed_in_as("A", "cleo", "approver")
    for reviewer in (lee, cleo):
        reviewer.post(
            f"/review/{runs[0]}/rubric",
            data={"csrf": csrf_of(reviewer.get(f"/review/{runs[0]}").text), "sha256": shas[0],
                  "on_brand": "4", "usable": "yes"},
        )  # fmt: skip
    with studio.db.session() as session:  # the brand is found by id, whatever its name now
        crud.rename_brand(session, tenant="A", ref="acme coffee", name="Acme Roasters")
    added = lee.post(
        f"/review/{runs[0]}/golden",
        data={"csrf": csrf_of(page), "sha256": shas[0]},
        follow_redirects=False,
    )
    assert added.status_code == 303
    suite_path = studio.settings.data_dir / "evals" / "tenants" / "A" / "golden.yaml"
    suite = load_suite(suite_path)
    assert [(c.id, c.brand) for c in suite.cases] == [(f"golden-{shas[0][:16]}", "Acme Roasters")]
    # agreement: the page, the endpoint and the CLI give the same figure
    report = api("GET", "/v1/review/agreement", studio.key("A", "viewer")).json()
    # the rubric labels the image rated; the approval labels the run's other images
    labelled = report["overall"]["labelled"]
    assert report["sources"]["rubric"] == 1 and sum(report["sources"].values()) == labelled
    assert report["overall"]["people_only"] + report["overall"]["both_accept"] == labelled
    assert report["overall"]["agreement"] in (0.0, 1.0)
    agreement_page = lee.get("/agreement").text
    assert f"{report['overall']['agreement']:.0%}" in agreement_page
    monkeypatch.setenv("BRANDLOOP_TENANT", "A")
    get_settings.cache_clear()
    code, out, err = run_cli(capsys, "review", "agreement", "--json")
    assert code == 0, err
    assert json.loads(out)["overall"] == report["overall"]
    for spelling in ("acme_roasters", "Acme Roasters"):  # its runs, recorded as 'Acme Coffee'
        named = api("GET", f"/v1/review/agreement?brand={spelling}", studio.key("A", "viewer"))
        assert named.json()["overall"] == report["overall"], spelling
    # a brand the tenant does not have is a 404, as wherever a brand is named
    nobody = api("GET", "/v1/review/agreement?brand=Nobody", studio.key("A", "viewer"))
    assert nobody.status_code == 404, nobody.text
    code, out, err = run_cli(capsys, "review", "agreement", "--brand", "Nobody")
    assert code == 2 and "unknown brand 'Nobody'" in err, (code, out, err)
    # a golden suite broken by hand is a 409 naming it, and stays as it was (never a 500 or a
    # silent reset that would lose the cases in it)
    suite_path.write_text("cases: [unclosed\n", encoding="utf-8")
    broken = lee.post(f"/review/{runs[0]}/golden", data={"csrf": csrf_of(page), "sha256": shas[0]})
    assert broken.status_code == 409 and "golden suite" in broken.text
    assert suite_path.read_text(encoding="utf-8") == "cases: [unclosed\n"


def _rate_usable(studio: Studio, run_id: str, sha: str) -> None:
    for name in ("lee", "cleo"):
        reviewer = studio.signed_in_as("A", name, "approver")
        rated = reviewer.post(
            f"/review/{run_id}/rubric",
            data={"csrf": csrf_of(reviewer.get(f"/review/{run_id}").text), "sha256": sha,
                  "on_brand": "4", "usable": "yes"},
            follow_redirects=False,
        )  # fmt: skip
        assert rated.status_code == 303, rated.text


def test_a_golden_case_is_made_from_the_run_in_the_url(
    studio: Studio, api: Callable[..., Any]
) -> None:
    """Two runs can make the same bytes; the case is the clicked run's, not the first's."""
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    creator = studio.key("A", "creator")
    runs = []
    for brief in ("a steaming cup on a table", "coffee beans in a jute sack"):
        job = api(
            "POST",
            "/v1/generations?wait=60",
            creator,
            json={"brief": brief, "brand": "Acme Coffee", "size": "128x128", "seed": 7},
        ).json()
        assert job["state"] == "succeeded", json.dumps(job)[:2000]
        runs.append(job["run_id"])
    shared = sorted(
        set(_shas(studio, runs[0], "accepted")) & set(_shas(studio, runs[1], "accepted"))
    )
    assert shared, "the two runs made no image in common"
    sha = shared[0]
    _rate_usable(studio, runs[1], sha)
    lee = studio.signed_in_as("A", "lee", "approver")
    page = lee.get(f"/review/{runs[1]}").text
    assert f'action="/review/{runs[1]}/golden"' in page
    added = lee.post(
        f"/review/{runs[1]}/golden", data={"csrf": csrf_of(page), "sha256": sha},
        follow_redirects=False,
    )  # fmt: skip
    assert added.status_code == 303, added.text
    path = studio.settings.data_dir / "evals" / "tenants" / "A" / "golden.yaml"
    (case,) = yaml.safe_load(path.read_text(encoding="utf-8"))["cases"]
    assert case["brief"] == "coffee beans in a jute sack", case
    assert runs[1] in case["description"] and runs[0] not in case["description"], case
    # an image the run in the URL did not make is not its case
    other = api(
        "POST",
        "/v1/generations?wait=60",
        creator,
        json={"brief": "a latte", "brand": "Acme Coffee", "size": "128x128", "seed": 99},
    ).json()
    foreign = sorted(set(_shas(studio, other["run_id"], "accepted")) - set(shared))[0]
    _rate_usable(studio, other["run_id"], foreign)
    before = path.read_bytes()
    refused = lee.post(f"/review/{runs[1]}/golden", data={"csrf": csrf_of(page), "sha256": foreign})
    assert refused.status_code == 404 and "made no image" in refused.text, refused.text
    assert path.read_bytes() == before


def test_golden_needs_an_image_the_run_accepted_and_an_approved_run(
    studio: Studio, api: Callable[..., Any], always_review: None
) -> None:
    """A run awaiting review offers no golden button, and the action is refused (409 naming
    why) until the run is approved; an image the acceptance rule rejected never is one."""
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    creator = studio.key("A", "creator")
    run_id = _waiting_run(studio, api, creator, seed=11)
    accepted = _shas(studio, run_id, "accepted")
    rejected = [s for s in _shas(studio, run_id, "rejected") if s not in accepted]
    assert accepted and rejected
    for sha in accepted + rejected:
        _rate_usable(studio, run_id, sha)
    lee = studio.signed_in_as("A", "lee", "approver")
    page = lee.get(f"/review/{run_id}").text
    assert f'action="/review/{run_id}/golden"' not in page
    assert "Once the run is approved, this image can be added" in page
    path = studio.settings.data_dir / "evals" / "tenants" / "A" / "golden.yaml"
    waiting = lee.post(
        f"/review/{run_id}/golden", data={"csrf": csrf_of(page), "sha256": accepted[0]}
    )
    assert waiting.status_code == 409 and "awaiting review" in waiting.text, waiting.text
    assert not path.exists()
    approved = lee.post(
        f"/review/{run_id}/decision",
        data={"csrf": csrf_of(page), "decision": "approve"},
        follow_redirects=False,
    )
    assert approved.status_code == 303, approved.text
    for sha in rejected:  # a candidate the rule rejected stays out, approved run or not
        refused = lee.post(f"/review/{run_id}/golden", data={"csrf": csrf_of(page), "sha256": sha})
        assert refused.status_code == 409 and "acceptance rule" in refused.text, refused.text
    assert not path.exists()
    page = lee.get(f"/review/{run_id}").text
    assert f'action="/review/{run_id}/golden"' in page
    added = lee.post(
        f"/review/{run_id}/golden", data={"csrf": csrf_of(page), "sha256": accepted[0]},
        follow_redirects=False,
    )  # fmt: skip
    assert added.status_code == 303, added.text
    assert [c.id for c in load_suite(path).cases] == [f"golden-{accepted[0][:16]}"]


def test_a_run_waiting_for_review_shows_its_images_marked_on_the_chat_and_run_pages(
    studio: Studio, api: Callable[..., Any], always_review: None
) -> None:
    """Its accepted images stay on the chat turn and the run page, marked as waiting for review,
    counted as the images waiting (an outside tester saw two thumbnails over "awaiting review:
    0 image(s)"), with a link to the review page for those who may review (approver, admin) and
    none for a creator or viewer, who would get a 403 there; the wording is the web app's, not
    the CLI command."""
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    cara = studio.signed_in_as("A", "cara", "creator")
    home = cara.get("/chat")
    thread = cara.post(
        "/chat",
        data={"csrf": csrf_of(home.text), "brand": "Acme Coffee", "message": "a steaming cup",
              "size": "256x256"},
        follow_redirects=False,
    ).headers["location"]  # fmt: skip
    for _ in range(600):
        turn = cara.get(thread).text
        if '<p class="reply">awaiting review' in turn:
            break
        time.sleep(0.1)
    run_id = re.search(r'href="/runs/(run_\w+)"', turn).group(1)  # type: ignore[union-attr]
    accepted = _shas(studio, run_id, "accepted")
    assert accepted
    assert f'<p class="reply">awaiting review: {len(accepted)} image(s), $' in turn
    lee = studio.signed_in_as("A", "lee", "approver")
    for who, may_review in ((cara, False), (studio.signed_in_as("A", "vic", "viewer"), False),
                            (lee, True)):  # fmt: skip
        for page in (who.get(thread).text, who.get(f"/runs/{run_id}").text):
            assert "brandloop review" not in page
            assert "Waiting for review" in page
            assert (f'href="/review/{run_id}"' in page) == may_review, page
            assert ('href="/review"' in page) == may_review  # the header's Review entry
            assert all(f"/thumbs/512/{sha}" in page for sha in accepted), page
    assert "No accepted images" not in cara.get(f"/runs/{run_id}").text


def test_a_run_reject_needs_a_note_and_a_blank_one_leaves_the_run_waiting(
    studio: Studio, api: Callable[..., Any], always_review: None
) -> None:
    """One stray `r` (the reject shortcut) with no note is a 422 page saying so; approve
    needs none."""
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    run_id = _waiting_run(studio, api, studio.key("A", "creator"))
    lee = studio.signed_in_as("A", "lee", "approver")
    page = lee.get(f"/review/{run_id}").text
    for note in ("", "   "):
        refused = lee.post(
            f"/review/{run_id}/decision",
            data={"csrf": csrf_of(page), "decision": "reject", "note": note},
            follow_redirects=False,
        )
        assert refused.status_code == 422, refused.text
        text = html.unescape(refused.text)
        assert "Note: to reject run" in text and "say why" in text
        assert 'id="verdict"' in text  # the review page again, its verdict form
        assert "status-awaiting_review" in lee.get(f"/runs/{run_id}").text
    assert run_id in lee.get("/review").text
    rejected = lee.post(
        f"/review/{run_id}/decision",
        data={"csrf": csrf_of(page), "decision": "reject", "note": "off brand"},
        follow_redirects=False,
    )
    assert rejected.status_code == 303, rejected.text
    assert run_id not in lee.get("/review").text


def test_the_review_queue_shows_each_waiting_runs_images(
    studio: Studio, api: Callable[..., Any], always_review: None
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    creator = studio.key("A", "creator")
    runs = [_waiting_run(studio, api, creator, seed=s) for s in (3, 4)]
    queue = studio.signed_in_as("A", "lee", "approver").get("/review").text
    for run_id in runs:
        accepted = _shas(studio, run_id, "accepted")
        assert accepted and all(f"/thumbs/256/{sha}" in queue for sha in accepted[:4]), queue
    assert "brandloop review" not in queue


def test_golden_cases_added_at_once_all_land(tmp_path: Path) -> None:
    """Reviewers adding golden cases at the same moment (threads of one process, or replicas
    sharing a data dir) each keep their case: the suite is read and rewritten under a lock."""
    path = tmp_path / "golden.yaml"
    brand = BrandKit.model_validate(brand_kit())

    def add(i: int) -> str:
        sha = hashlib.sha256(str(i).encode()).hexdigest()
        run = RunRow(id=f"run_{i}", brief=f"brief {i}")
        attempt = AttemptRow(
            width=512, height=512, seed_requested=i, template_ref="default@1",
            model="procedural/draft", composite=0.8,
        )  # fmt: skip
        with reviews._suite_lock(path):
            return reviews._append_golden(path, brand, run, attempt, sha256=sha, actor="lee")

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(add, range(16)))
    assert sorted(c.id for c in load_suite(path).cases) == sorted(ids)


def test_pairwise_mode_records_which_is_better(studio: Studio, api: Callable[..., Any]) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    creator = studio.key("A", "creator")
    for model in ("procedural/draft", "procedural/studio"):
        job = api(
            "POST",
            "/v1/generations?wait=60",
            creator,
            json={"brief": "a cup", "brand": "Acme Coffee", "size": "128x128", "model": model},
        ).json()
        assert job["state"] in ("succeeded", "failed"), job  # scored attempts either way
    lee = studio.signed_in_as("A", "lee", "approver")
    page = lee.get("/review/pairwise?axis=model").text
    left = re.search(r'name="left" value="(\w+)"', page).group(1)  # type: ignore[union-attr]
    right = re.search(r'name="right" value="(\w+)"', page).group(1)  # type: ignore[union-attr]
    judged = lee.post(
        "/review/pairwise",
        data={"csrf": csrf_of(page), "axis": "model", "left": left, "right": right,
              "winner": "right"},
        follow_redirects=False,
    )  # fmt: skip
    assert judged.status_code == 303
    after = lee.get("/review/pairwise?axis=model").text
    assert re.search(r"<td>procedural/\w+</td><td>1</td><td>0</td>", after)
    assert re.search(r"<td>procedural/\w+</td><td>0</td><td>1</td>", after)
    same = lee.post(
        "/review/pairwise",
        data={"csrf": csrf_of(after), "axis": "model", "left": left, "right": left,
              "winner": "left"},
    )  # fmt: skip
    assert same.status_code == 422
    # the same pair again - sides swapped, the verdict changed, twice at once: it replaces the
    # reviewer's judgement, it is not counted again (an outside tester's tally showed one
    # reviewer's one pair as a win and a loss for each)
    again = {"csrf": csrf_of(after), "axis": "model", "left": right, "right": left,
             "winner": "right"}  # fmt: skip

    def post(_: int) -> Any:
        return lee.post("/review/pairwise", data=again, follow_redirects=False)

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(post, range(2)))
    assert [a.status_code for a in answers] == [303, 303], [a.text[:300] for a in answers]
    tally = lee.get("/review/pairwise?axis=model").text
    rows = re.findall(r"<td>(procedural/\w+)</td><td>(\d+)</td><td>(\d+)</td>", tally)
    assert sorted((won, lost) for _, won, lost in rows) == [("0", "1"), ("1", "0")], rows
    with studio.db.session() as session:
        (row,) = session.scalars(select(PairwiseJudgementRow)).all()
        assert (row.left_sha256, row.winner) == (right, "right")  # as shown the second time


def test_pairwise_sides_are_shuffled_per_load(studio: Studio, api: Callable[..., Any]) -> None:
    """The version or model that sorts first is not always on the left (position bias)."""
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    creator = studio.key("A", "creator")
    for model in ("procedural/draft", "procedural/studio"):
        api(
            "POST",
            "/v1/generations?wait=60",
            creator,
            json={"brief": "a cup", "brand": "Acme Coffee", "size": "128x128", "model": model},
        )
    lee = studio.signed_in_as("A", "lee", "approver")
    lefts = set()
    for _ in range(24):  # both orders stay unseen with odds of 2 in 2**24
        page = lee.get("/review/pairwise?axis=model").text
        found = re.search(r"Left: (procedural/\w+)", page)
        assert found, page
        lefts.add(found.group(1))
    assert lefts == {"procedural/draft", "procedural/studio"}


def test_review_pages_need_an_approver_and_the_tenant(
    studio: Studio, api: Callable[..., Any], always_review: None
) -> None:
    api("POST", "/v1/brands", studio.key("A", "admin"), json=brand_kit())
    run_id = _waiting_run(studio, api, studio.key("A", "creator"))
    creator = studio.signed_in_as("A", "cid", "creator")
    assert creator.get("/review").status_code == 403
    assert creator.get("/agreement").status_code == 200  # viewers may read the figure
    b = studio.signed_in_as("B", "bob", "admin")
    assert b.get(f"/review/{run_id}").status_code == 404
    token = csrf_of(b.get("/review").text)
    assert (
        b.post(
            f"/review/{run_id}/decision", data={"csrf": token, "decision": "approve"}
        ).status_code
        == 404
    )
    assert run_id not in b.get("/review").text
