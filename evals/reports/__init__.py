"""Report writers for an eval run: the JSON document, JUnit XML and the HTML report."""

from brandloop.evals.reports.document import build_document
from brandloop.evals.reports.html import build_html
from brandloop.evals.reports.junit import build_junit

__all__ = ["build_document", "build_html", "build_junit"]
