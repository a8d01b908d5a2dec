"""The published JSON schema of suite files, generated from :class:`brandloop.evals.models.SuiteFile`.

Regenerate with ``python -m brandloop.evals.schema`` after changing the models; a test compares them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from brandloop.evals.models import SuiteFile

SCHEMA_PATH = Path(__file__).with_name("suite.schema.json")
SCHEMA_ID = "https://brandloop.dev/schemas/eval-suite-1.json"


def suite_schema() -> dict[str, Any]:
    schema = SuiteFile.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }


def render_schema() -> str:
    return json.dumps(suite_schema(), indent=2, sort_keys=True) + "\n"
