"""Screenshots of every studio page, from a real ``brandloop serve`` with demo data, taken by
Debian's headless Chromium (the browser tests' harness: tests/api/studio/browser.py).

    .venv/bin/python scripts/studio_screenshots.py [--out out/screenshots]

Seeds tenant A through the API and the studio itself: runs for two brands, a chat thread with
a revision, a run waiting for review (Bloom Skincare is always reviewed), a second template
version in review, a campaign, rubric ratings, a pairwise judgement, a style note and a golden
eval suite run. Then signs in with a one-time link and saves one PNG per page.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, sync_playwright  # noqa: E402

from tests.api.studio.browser import Site, chromium, sign_in_with_link, site  # noqa: E402

BRIEFS = [
    ("Acme Coffee", "a steaming mug on a wooden table, soft morning light"),
    ("Acme Coffee", "coffee beans spilling from a paper bag"),
    ("Nordlys Outdoor", "a climber on a ridge at sunrise, alpine jacket"),
    ("Acme Coffee", "latte art in a ceramic cup by the window"),
]


def wait_for(check: object, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.3)


def seed(s: Site, page: Page) -> dict[str, str]:
    s.api("POST", "/v1/brands", "A", "admin", json=_kit("nordlys-outdoor"))
    runs = []
    for brand, brief in BRIEFS:
        job = s.api(
            "POST", "/v1/generations?wait=120", "A", "creator",
            json={"brief": brief, "brand": brand, "size": "512x512", "count": 2},
        ).json()  # fmt: skip
        runs.append(job["run_id"])
    for model in ("procedural/draft", "procedural/studio"):
        s.api(
            "POST", "/v1/generations?wait=120", "A", "creator",
            json={"brief": "a cup on a saucer", "brand": "Acme Coffee", "size": "256x256",
                  "model": model},
        )  # fmt: skip
    s.api(
        "POST", "/v1/campaigns", "A", "creator",
        json={"name": "autumn sale", "brand": "Acme Coffee", "budget_usd": 0.4,
              "assets": [{"brief": "hero banner, warm autumn light", "formats": ["512x320"]},
                         {"brief": "square post, a steaming cup", "formats": ["1:1"]}]},
    )  # fmt: skip
    # chat: a brief and a revision, through the studio's own forms
    page.goto(s.url + "/chat")
    page.get_by_label("Brand").select_option("Acme Coffee")
    page.get_by_label("Brief").fill("a steaming mug on a wooden table")
    page.get_by_label("Size").fill("512x512")
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(re.compile(r".*/chat/thr_\w+"))
    thread = page.url
    page.locator('.turn-result img[src^="/thumbs/1024/"]').first.wait_for(timeout=180_000)
    page.get_by_label("Revise").fill("warmer, and drop the mug")
    page.get_by_role("button", name="Send").click()
    page.locator('.turn-result img[src^="/thumbs/1024/"]').nth(1).wait_for(timeout=180_000)
    # a run that waits for review
    review = s.api(
        "POST", "/v1/generations?wait=120", "A", "creator",
        json={"brief": "a serum bottle on marble", "brand": "Bloom Skincare", "size": "512x512"},
    ).json()["run_id"]  # fmt: skip
    # rubric, golden and pairwise on a finished run
    page.goto(f"{s.url}/review/{review}")
    page.locator("input[name=on_brand]").first.fill("2")
    page.locator("input[name=usable][value=no]").first.check()
    page.locator("input[name=note]").first.fill("too pale for the brand")
    page.get_by_role("button", name="Save rubric").first.click()
    page.goto(f"{s.url}/review/{review}")
    page.locator("input[name=on_brand]").last.fill("5")
    page.locator("input[name=note]").last.fill("exactly our look")
    page.get_by_role("button", name="Save rubric").last.click()
    page.goto(f"{s.url}/review/{review}")
    page.get_by_role("button", name="Add to the golden eval suite").last.click()
    page.goto(s.url + "/review/pairwise?axis=model")
    if page.get_by_role("button", name="Right is better").count():
        page.get_by_role("button", name="Right is better").click()
    # templates: a second version in review
    page.goto(s.url + "/templates/brand-hero")
    page.get_by_label("Body", exact=True).fill("{{ brief }}. {{ palette_clause }}. soft daylight.")
    page.get_by_label("Message").fill("shorter, daylight")
    page.get_by_role("button", name="Add draft").click()
    page.get_by_role("button", name="Submit v2").click()
    # a style note, and the golden suite run
    page.goto(s.url + "/brands/Acme Coffee")
    page.get_by_label("New note").fill("always a soft morning light, never neon")
    page.get_by_role("button", name="Add note").click()
    page.goto(s.url + "/evals")
    page.get_by_role("button", name="Run the golden suite").click()
    wait_for(lambda: "golden-v" in (page.reload() and page.content()), "the golden suite run")
    return {"thread": thread, "run": runs[0], "review": review}


def _kit(name: str) -> dict[str, object]:
    from tests.api.studio.browser import brand_json

    return brand_json(name)


def shoot(page: Page, url: str, path: Path) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    for _ in range(30):  # scroll through, as a person would, so lazy images load
        page.mouse.wheel(0, 900)
        page.wait_for_timeout(60)
    page.wait_for_load_state("networkidle")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=True)
    print(f"{path}  <- {url}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="bl-shots-") as tmp,
        site(Path(tmp) / "data", sleep_s=0.05) as s,
        sync_playwright() as playwright,
        chromium(playwright) as browser,
    ):
        page = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
        page.set_default_timeout(120_000)
        shoot(page, s.url + "/signin", args.out / "00-signin.png")
        sign_in_with_link(page, s.link("A", "maria", "admin"))
        made = seed(s, page)
        page.goto(s.url + "/evals")
        result_set = re.search(r'href="/evals/([\w.=-]+)"', page.content())
        pages = {
            "01-chat-thread": made["thread"],
            "02-runs": s.url + "/runs",
            "03-run": f"{s.url}/runs/{made['run']}",
            "04-review-queue": s.url + "/review",
            "05-review-item": f"{s.url}/review/{made['review']}",
            "06-pairwise": s.url + "/review/pairwise?axis=template",
            "07-agreement": s.url + "/agreement",
            "08-templates": s.url + "/templates",
            "09-template-diff": s.url + "/templates/brand-hero?a=1&b=2",
            "10-campaigns": s.url + "/campaigns",
            "11-brands": s.url + "/brands",
            "12-brand": s.url + "/brands/Acme Coffee",
            "13-evals": s.url + "/evals",
            "14-costs": s.url + "/costs",
            "15-chat-home": s.url + "/chat",
        }
        if result_set:
            pages["16-eval-result"] = f"{s.url}/evals/{result_set.group(1)}"
            pages["17-eval-report"] = f"{s.url}/evals/{result_set.group(1)}/report"
        for name, url in pages.items():
            shoot(page, url, args.out / f"{name}.png")


if __name__ == "__main__":
    main()
