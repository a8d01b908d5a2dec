"""A real headless Chromium on a real ``brandloop serve``, for the browser tests and the
screenshot script (``scripts/studio_screenshots.py``).

Chromium is Debian's package (``scripts/services.sh`` installs it; Playwright cannot download
its own browsers here), driven by Playwright for Python through ``executable_path``, with a new
empty profile each launch. axe-core is vendored in ``vendor/`` (MPL-2.0, ``axe-core.LICENSE``)
and run in the page through the DevTools protocol, which the page's CSP does not govern.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Playwright

from tests.api.http.test_server import BRANDLOOP, ROOT, env_for, free_port, server

VENDOR = Path(__file__).with_name("vendor")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AGENT_POLICY = "review: {mode: never}\nbrand_review:\n  bloom-skincare: {mode: always}\n"


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@contextmanager
def chromium(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium; Playwright gives each launch a new, empty profile directory."""
    executable = chromium_path()
    if executable is None:
        raise RuntimeError("chromium is not installed: bash scripts/services.sh start installs it")
    browser = playwright.chromium.launch(executable_path=executable, args=FLAGS)
    try:
        yield browser
    finally:
        browser.close()


def brandloop(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [*BRANDLOOP, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


@dataclass
class Site:
    """A running ``brandloop serve`` with its data dir, and ways in."""

    url: str
    env: dict[str, str]
    keys: dict[tuple[str, str], str] = field(default_factory=dict)

    def key(self, tenant: str, role: str) -> str:
        if (tenant, role) not in self.keys:
            made = json.loads(
                brandloop(
                    self.env,
                    "keys",
                    "create",
                    "--tenant",
                    tenant,
                    "--role",
                    role,
                    "--principal",
                    f"{tenant}-{role}-bot",
                    "--json",
                )
            )
            self.keys[tenant, role] = made["key"]
        return self.keys[tenant, role]

    def link(self, tenant: str, principal: str, role: str) -> str:
        args = ["--tenant", tenant, "--principal", principal, "--role", role]
        made = json.loads(
            brandloop(self.env, "studio", "link", *args, "--base-url", self.url, "--json")
        )
        return str(made["url"])

    def api(self, method: str, path: str, tenant: str, role: str, **kwargs: Any) -> Any:
        import httpx

        headers = {"Authorization": f"Bearer {self.key(tenant, role)}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=120, **kwargs)


@contextmanager
def site(data_dir: Path, *, sleep_s: float = 1.0) -> Iterator[Site]:
    """``brandloop serve`` on a free loopback port, the Bloom brand always reviewed, the
    procedural provider slowed by ``sleep_s`` a call so runs can be watched."""
    data_dir.mkdir(parents=True, exist_ok=True)
    policy = data_dir / "agent-policy.yaml"
    policy.write_text(AGENT_POLICY)
    env = env_for(
        data_dir,
        None,  # the embedded SQLite registry, as a studio user's first `brandloop serve` has
        BRANDLOOP_AGENT_POLICY=str(policy),
        BRANDLOOP_PROVIDER_PLUGINS="tests.api.studio.slow_provider:slow_procedural",
        BL_TEST_SLEEP_S=str(sleep_s),
        BRANDLOOP_API_LOG_JSON="false",
    )
    port = free_port()
    with server(env, port, data_dir / "serve.log"):
        made = Site(url=f"http://127.0.0.1:{port}", env=env)
        for tenant in ("A",):
            for kit in ("acme-coffee", "bloom-skincare"):
                made.api("POST", "/v1/brands", tenant, "admin", json=brand_json(kit))
        yield made


def brand_json(name: str) -> dict[str, Any]:
    import yaml

    data: dict[str, Any] = yaml.safe_load(
        (ROOT / "examples" / "brands" / f"{name}.yaml").read_text()
    )
    return data


def sign_in_with_link(page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_role("button", name="Continue as").click()
    page.wait_for_url("**/chat")


AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
}"""


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now."""
    page.evaluate((VENDOR / "axe.min.js").read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = page.evaluate(AXE_RUN)
    return found


def environ_has_ci() -> bool:
    return bool(os.environ.get("CI"))
