"""``python -m brandloop.evals.schema``: write ``evals/schema/suite.schema.json`` from the models."""

from brandloop.evals.schema import SCHEMA_PATH, render_schema

SCHEMA_PATH.write_text(render_schema(), encoding="utf-8")
