"""``GET /v1/artifacts/{sha256}`` with ``Range`` and ``HEAD``, as RFC 9110 reads them: a byte
range is a 206 (several: ``multipart/byteranges``); a range of another unit is ignored (the
whole image, 200); a malformed or unsatisfiable byte range is an RFC 9457 problem, never plain
text; HEAD is GET without the bytes. Every answer is one ``/openapi.json`` declares."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, assert_problem
from tests.api.http.test_openapi_shape import _assert_declared, _doc

PATH = "/v1/artifacts/{sha256}"
GEN = {
    "brief": "a latte on a marble counter",
    "brand": "Acme Coffee",
    "size": "256x256",
    "seed": 11,
    "providers": ["procedural"],
}


@pytest.fixture
def image(client: TestClient, keys: Keys, acme: dict[str, Any]) -> tuple[str, bytes]:
    job = client.post("/v1/generations?wait=120", json=GEN, headers=keys["A", "admin"]).json()
    assert job["state"] == "succeeded", job
    sha = job["result"]["images"][0]["sha256"]
    whole = client.get(f"/v1/artifacts/{sha}", headers=keys["A", "viewer"])
    assert whole.status_code == 200
    return sha, whole.content


def test_byte_ranges_are_answered_and_their_errors_are_problems(
    client: TestClient, keys: Keys, image: tuple[str, bytes]
) -> None:
    sha, data = image
    doc = _doc(client)
    viewer = keys["A", "viewer"]

    def get(range_: str) -> Any:
        answer = client.get(f"/v1/artifacts/{sha}", headers=viewer | {"Range": range_})
        _assert_declared(doc, "get", PATH, answer)
        return answer

    part = get("bytes=0-9")
    assert part.status_code == 206 and part.content == data[:10]
    assert part.headers["content-range"] == f"bytes 0-9/{len(data)}"
    assert part.headers["etag"] == f'"{sha}"'
    several = get("bytes=0-1,5-6")
    assert several.status_code == 206
    assert several.headers["content-type"].startswith("multipart/byteranges; boundary=")

    for other_unit in ("items=0-5", "Items=0-5", "pages"):  # RFC 9110 14.2: ignored
        whole = get(other_unit)
        assert whole.status_code == 200 and whole.content == data, other_unit

    past = assert_problem(get("bytes=99999999-"), 416, "range-not-satisfiable")
    assert str(len(data)) in past["detail"]
    assert get("bytes=99999999-").headers["content-range"] == f"bytes */{len(data)}"
    backwards = assert_problem(get("bytes=5-2"), 400, "bad-input")
    assert backwards["detail"] == "malformed Range header: start must be less than end"
    nothing = assert_problem(get("bytes=abc"), 400, "bad-input")
    assert (
        nothing["detail"] == "malformed Range header: it names no byte range (bytes=<first>-<last>)"
    )


def test_head_answers_as_get_does_without_the_bytes(
    client: TestClient, keys: Keys, image: tuple[str, bytes]
) -> None:
    sha, data = image
    viewer = keys["A", "viewer"]
    head = client.head(f"/v1/artifacts/{sha}", headers=viewer)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(data))
    assert head.headers["content-type"] == "image/png"
    assert head.headers["etag"] == f'"{sha}"'
    ranged = client.head(f"/v1/artifacts/{sha}", headers=viewer | {"Range": "bytes=0-9"})
    assert ranged.status_code == 206 and ranged.headers["content-length"] == "10"
    same = client.head(f"/v1/artifacts/{sha}", headers=viewer | {"If-None-Match": f'"{sha}"'})
    assert same.status_code == 304
    missing = client.head(f"/v1/artifacts/{'0' * 64}", headers=viewer)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert client.head(f"/v1/artifacts/{sha}").status_code == 401
    post = client.post(f"/v1/artifacts/{sha}", headers=viewer)
    assert_problem(post, 405, "method-not-allowed")
    assert post.headers["allow"] == "GET, HEAD, DELETE"
    doc = _doc(client)
    assert set(doc["paths"][PATH]) == {"get", "delete"}
    assert {"200", "206", "304", "416"} <= set(doc["paths"][PATH]["get"]["responses"])
