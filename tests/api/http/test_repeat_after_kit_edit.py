"""Over HTTP: a brand kit replaced with ``POST /v1/brands`` ends the repeats of its requests.

The same seeded ``POST /v1/generations`` after the kit changed was served the old kit's image
from the cache at $0, the old rendered prompt in its signed receipt (outside tester, session
19). It is now rendered from the current kit and paid for; repeated again, it is free.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from brandloop.artifacts import RECEIPT_KEY, read_png_text
from tests.api.http.conftest import Keys, brand_kit

GEN = {"brief": "a morning table", "brand": "Acme Coffee", "size": "160x160", "seed": 77}


def _generate(client: TestClient, keys: Keys) -> dict[str, Any]:
    response = client.post("/v1/generations?wait=60", json=GEN, headers=keys["A", "creator"])
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    assert job["state"] == "succeeded", job
    result: dict[str, Any] = job["result"]
    assert result["status"] == "succeeded" and result["images"], result["reason"]
    return result


def _signed_prompt(client: TestClient, keys: Keys, image: dict[str, Any]) -> str:
    art = client.get(f"/v1/artifacts/{image['sha256']}", headers=keys["A", "viewer"])
    assert art.status_code == 200
    prompt: str = json.loads(read_png_text(art.content)[RECEIPT_KEY])["prompt"]
    return prompt


def test_a_generation_after_the_kit_was_replaced_uses_the_current_kit(
    client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    old = _generate(client, keys)
    assert old["cost_usd"] > 0 and "warm, cozy, artisanal" in old["images"][0]["prompt"]

    edited = brand_kit() | {"tone": ["bold", "energetic", "modern"]}
    response = client.post("/v1/brands", json=edited, headers=keys["A", "admin"])
    assert response.status_code == 200, response.text  # an existing brand, updated

    new = _generate(client, keys)
    assert "served from the cache" not in new["reason"]
    assert new["cost_usd"] > 0 and not any(image["cache_hit"] for image in new["images"])
    for image in new["images"]:
        assert "bold, energetic, modern" in image["prompt"] and "warm" not in image["prompt"]
        assert _signed_prompt(client, keys, image) == image["prompt"]

    repeat = _generate(client, keys)
    assert repeat["cost_usd"] == 0 and all(image["cache_hit"] for image in repeat["images"])
    assert [i["prompt"] for i in repeat["images"]] == [i["prompt"] for i in new["images"]]
