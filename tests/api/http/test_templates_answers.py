"""What the template routes answer, on both databases (an outside tester's report): a weighted
label is shown as its weights (defect 3), a four-eyes refusal names the version's author
(defect 11), and model hints name models of the catalog (defect 13)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, assert_problem, both_databases

settings = pytest.fixture(name="settings")(both_databases)

BODY = {"body": "{{ brief }}. {{ palette_clause }}", "model_hints": ["procedural/draft"]}


def _approved(client: TestClient, keys: Keys, name: str, count: int) -> dict[str, str]:
    ana, lee = keys.of("A", "ana", "creator"), keys.of("A", "lee", "approver")
    for version in range(1, count + 1):
        made = client.post(f"/v1/templates/{name}/versions", json=BODY, headers=ana)
        assert made.status_code == 201, made.text
        path = f"/v1/templates/{name}/versions/{version}"
        assert client.post(f"{path}/submit", headers=ana).status_code == 200
        review = client.post(f"{path}/review", json={"decision": "approve"}, headers=lee)
        assert review.status_code == 200, review.text
    return lee


def test_a_weighted_label_reads_back_as_its_weights(client: TestClient, keys: Keys) -> None:
    lee = _approved(client, keys, "lab-t", 2)
    url = "/v1/templates/lab-t/labels"
    put = client.put(f"{url}/production", json={"weights": {"1": 90, "2": 10}}, headers=lee)
    assert put.status_code == 200, put.text
    assert client.put(f"{url}/staging", json={"weights": {"2": 1}}, headers=lee).status_code == 200
    for answer in (
        client.put(f"{url}/canary", json={"weights": {"2": 0, "1": 3}}, headers=lee).json(),
        client.get("/v1/templates/lab-t", headers=lee).json(),
        next(t for t in client.get("/v1/templates", headers=lee).json() if t["name"] == "lab-t"),
    ):
        # one version (all the traffic) as its number, as before; a split as PUT takes it
        assert answer["labels"] == {
            "canary": 1,
            "production": {"1": 90.0, "2": 10.0},
            "staging": 2,
        }
        assert answer["label_weights"] == {
            "canary": {"1": 3.0, "2": 0.0},
            "production": {"1": 90.0, "2": 10.0},
            "staging": {"2": 1.0},
        }
    # what it reads is what PUT takes: setting it again changes nothing
    weights = client.get("/v1/templates/lab-t", headers=lee).json()["label_weights"]["production"]
    again = client.put(f"{url}/production", json={"weights": weights}, headers=lee)
    assert again.json()["labels"]["production"] == {"1": 90.0, "2": 10.0}


def test_the_schema_lets_a_label_be_a_version_or_weights(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["PromptTemplate"]
    labels = schema["properties"]["labels"]["additionalProperties"]
    kinds = {option["type"] for option in labels["anyOf"]}
    assert kinds == {"integer", "object"}, labels
    weights = schema["properties"]["label_weights"]["additionalProperties"]
    assert weights["type"] == "object" and weights["additionalProperties"]["type"] == "number"


def test_a_four_eyes_refusal_names_the_author_not_the_reviewer(
    client: TestClient, keys: Keys
) -> None:
    ana = keys.of("A", "ana", "creator")
    made = client.post("/v1/templates/api-t/versions", json=BODY, headers=ana)
    assert made.status_code == 201, made.text
    assert client.post("/v1/templates/api-t/versions/1/submit", headers=ana).status_code == 200
    for reviewer, decision in (("Ana", "approve"), ("ANA", "reject")):
        refused = client.post(
            "/v1/templates/api-t/versions/1/review",
            json={"decision": decision, "note": "mine"},
            headers=keys.of("A", reviewer, "approver"),
        )
        detail = assert_problem(refused, 409, "conflict")["detail"]
        assert detail.startswith(f"ana wrote api-t@1; {reviewer} may not {decision} it"), detail
        assert f"{reviewer} wrote" not in detail


@pytest.mark.parametrize(
    "hints",
    [["nope/none"], ["procedural/draft", "openai/gpt-nonexistent"]],
)
def test_model_hints_naming_no_model_of_the_catalog_are_404(
    client: TestClient, keys: Keys, hints: list[str]
) -> None:
    ana = keys.of("A", "ana", "creator")
    unknown = [h for h in hints if h != "procedural/draft"]
    for name in ("mh-new", "brand-hero"):  # a new template's first version, a later version
        answer = client.post(
            f"/v1/templates/{name}/versions", json={**BODY, "model_hints": hints}, headers=ana
        )
        detail = assert_problem(answer, 404, "not-found")["detail"]
        assert f"the catalog does not hold: {', '.join(unknown)}" in detail, detail
        assert "procedural/draft" in detail  # among the known models it lists
    assert client.get("/v1/templates/mh-new", headers=ana).status_code == 404
    versions: list[Any] = client.get("/v1/templates/brand-hero", headers=ana).json()["versions"]
    assert len(versions) == 1
    fine = client.post(
        "/v1/templates/mh-new/versions",
        json={**BODY, "model_hints": ["procedural/draft"]},
        headers=ana,
    )
    assert fine.status_code == 201, fine.text


def test_template_routes_check_their_input_before_anything_is_looked_up(
    client: TestClient, keys: Keys
) -> None:
    """An outside tester's report (session 28): a version number with a leading zero, a
    rejection without a note, a blank body and a weight that is not a number are each a 422
    ``validation`` naming what is wrong, whether or not the template exists, and change
    nothing."""
    ana, lee = keys.of("A", "ana", "creator"), keys.of("A", "lee", "approver")
    assert client.post("/v1/templates/zero-t/versions", json=BODY, headers=ana).status_code == 201
    base = "/v1/templates/zero-t/versions"
    for bad in ("01", "001", "0"):
        for step, body in (("submit", None), ("review", {"decision": "approve"})):
            who = ana if step == "submit" else lee
            answer = client.post(f"{base}/{bad}/{step}", json=body, headers=who)
            problem = assert_problem(answer, 422, "validation")
            assert "version" in problem["detail"], problem
    version = client.get("/v1/templates/zero-t", headers=ana).json()["versions"][0]
    assert version["status"] == "draft", version  # "01" did not submit version 1
    assert client.post(f"{base}/1/submit", headers=ana).status_code == 200

    for name in ("zero-t", "no-such-t"):  # checked with the body, before the lookup (no 404)
        for note in (None, "", "   ", "\u200b"):
            body = {"decision": "reject"} | ({} if note is None else {"note": note})
            answer = client.post(f"/v1/templates/{name}/versions/1/review", json=body, headers=lee)
            problem = assert_problem(answer, 422, "validation")
            assert "a rejection needs a note saying why" in problem["detail"], problem
    assert client.get("/v1/templates/zero-t", headers=ana).json()["versions"][0]["status"] == (
        "in_review"
    )

    for blank in ("   ", "\u200b", "\t\n"):
        answer = client.post(base, json={**BODY, "body": blank}, headers=ana)
        problem = assert_problem(answer, 422, "validation")
        assert "body is empty" in problem["detail"], problem
    assert len(client.get("/v1/templates/zero-t", headers=ana).json()["versions"]) == 1

    label = "/v1/templates/zero-t/labels/exp"
    for raw in ('{"weights": {"1": NaN}}', '{"weights": {"1": Infinity}}'):
        answer = client.put(label, content=raw, headers={**lee, "Content-Type": "application/json"})
        problem = assert_problem(answer, 422, "validation")
        assert "finite number" in problem["detail"], problem


def test_a_version_made_over_the_api_carries_its_metadata(client: TestClient, keys: Keys) -> None:
    """As a template file's ``metadata`` (the CLI and import carry it): the API took none."""
    ana = keys.of("A", "ana", "creator")
    metadata = {"domain": "retail", "tone": "warm", "safety_notes": "no alcohol"}
    made = client.post(
        "/v1/templates/meta-t/versions", json={**BODY, "metadata": metadata}, headers=ana
    )
    assert made.status_code == 201, made.text
    assert made.json()["metadata"] == metadata
    read = client.get("/v1/templates/meta-t", headers=ana).json()["versions"][0]
    assert read["metadata"] == metadata
    for bad in ({"owner": "x"}, {"tone": 3}, {"domain": "x" * 201}):
        answer = client.post(
            "/v1/templates/meta-t/versions", json={**BODY, "metadata": bad}, headers=ana
        )
        assert_problem(answer, 422, "validation")
    assert len(client.get("/v1/templates/meta-t", headers=ana).json()["versions"]) == 1
