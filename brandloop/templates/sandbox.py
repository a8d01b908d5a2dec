"""The template sandbox: what a prompt template may contain, and how it renders.

Templates render in a locked-down Jinja2 sandbox: an ``ImmutableSandboxedEnvironment`` with no
globals, no loader (so no ``include``/``import``/``extends``, no files), a short allow-list of
filters, *no* attribute or item access at all (templates only ever see strings), and strict
undefined variables. :func:`validate_template` checks a body before it is stored: it must parse,
use only the variables the composer provides (:data:`KNOWN_VARIABLES`) and only the constructs
prompts need (text, ``{{ var }}``, ``{% if %}``, filters, literals, comparisons).

This is core: template governance checks a version here before storing it, and the composer
(``brandloop.tools.composer``) renders through it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Final

from jinja2 import StrictUndefined, Template, TemplateError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from brandloop.errors import BadInputError

KNOWN_VARIABLES: Final[dict[str, str]] = {
    "brief": "the creative request, trimmed, without a final full stop",
    "brand": "the brand's name",
    "tone": "the brand's tone words, comma-separated (or 'on-brand')",
    "required": "terms the brand requires, comma-separated (may be empty)",
    "palette_clause": "'in the brand colours …' (or the strict clause on a palette miss)",
    "style_notes": "style notes recalled from the brand's memory (may be empty)",
    "modifiers": "modifiers the agent adds while replanning (may be empty)",
    "brand_negative": "the brand kit's negative prompt",
    "negative_extra": "off-brand colours moved to the negative prompt (may be empty)",
}
SAFE_FILTERS: Final = frozenset(
    {"capitalize", "default", "d", "lower", "title", "trim", "truncate", "upper"}
)
MAX_TEMPLATE_CHARS: Final = 8000
MAX_RENDERED_CHARS: Final = 20000
_ALLOWED_NODES: Final = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Name,
    nodes.Const,
    nodes.If,
    nodes.CondExpr,
    nodes.Filter,
    nodes.Test,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Concat,
    nodes.Keyword,
)


class _LockedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with every attribute closed: templates handle strings only."""

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return False

    def is_safe_callable(self, obj: Any) -> bool:
        return False


def _make_env() -> _LockedSandbox:
    env = _LockedSandbox(undefined=StrictUndefined, autoescape=False, loader=None)
    env.globals.clear()
    env.filters = {name: f for name, f in env.filters.items() if name in SAFE_FILTERS}
    env.tests = {
        name: t for name, t in env.tests.items() if name in {"defined", "undefined", "none"}
    }
    return env


_env = _make_env()


def _describe(node: nodes.Node) -> str:
    if isinstance(node, nodes.Getattr):
        return f"attribute access ('.{node.attr}')"
    if isinstance(node, nodes.Getitem):
        return "item access ('[...]')"
    if isinstance(node, nodes.Call):
        return "a function or method call"
    if isinstance(node, nodes.For):
        return "a for loop"
    if isinstance(node, nodes.Include | nodes.Import | nodes.FromImport | nodes.Extends):
        return "include/import/extends (templates cannot read files)"
    return f"the construct {type(node).__name__}"


def validate_template(body: str, *, field: str = "body") -> set[str]:
    """Check a template body before it is stored; returns the variables it uses.

    Raises :class:`BadInputError` naming the first problem: a syntax error, a construct outside
    the allow-list (attribute or item access, calls, loops, include/import), a filter outside
    :data:`SAFE_FILTERS`, or a variable the composer does not provide.
    """
    if len(body) > MAX_TEMPLATE_CHARS:
        raise BadInputError(
            f"template {field} is {len(body)} characters; the limit is {MAX_TEMPLATE_CHARS}"
        )
    try:
        tree = _env.parse(body)
    except TemplateError as exc:
        raise BadInputError(f"template {field} does not parse: {exc}") from None
    used: set[str] = set()
    for node in tree.find_all(nodes.Node):
        if not isinstance(node, _ALLOWED_NODES):
            raise BadInputError(
                f"template {field} uses {_describe(node)}, which templates may not use"
            )
        if isinstance(node, nodes.Filter) and node.name not in SAFE_FILTERS:
            allowed = ", ".join(sorted(SAFE_FILTERS))
            raise BadInputError(
                f"template {field} uses the filter {node.name!r}; allowed filters: {allowed}"
            )
        if isinstance(node, nodes.Test) and node.name not in _env.tests:
            raise BadInputError(
                f"template {field} uses the test {node.name!r}, which is not allowed"
            )
        if isinstance(node, nodes.Name):
            used.add(node.name)
    unknown = sorted(used - KNOWN_VARIABLES.keys())
    if unknown:
        known = ", ".join(sorted(KNOWN_VARIABLES))
        raise BadInputError(
            f"template {field} uses undefined variable(s) {', '.join(unknown)}; known variables: {known}"
        )
    return used


@lru_cache(maxsize=256)
def _compiled(body: str) -> Template:
    """Validated and compiled once per distinct body: the sandbox is the second line of defence."""
    validate_template(body)
    try:
        return _env.from_string(body)
    except TemplateError as exc:  # pragma: no cover - validate_template parsed it already
        raise BadInputError(f"template does not parse: {exc}") from None


def render(body: str, variables: dict[str, Any]) -> str:
    """Render a template body; undefined variables and sandbox violations are bad input."""
    try:
        template = _compiled(body)
    except BadInputError as exc:
        raise BadInputError(f"template does not render: {exc}") from None
    try:
        text = template.render(**variables)
    except (TemplateError, TypeError) as exc:
        raise BadInputError(f"template does not render: {exc}") from None
    if len(text) > MAX_RENDERED_CHARS:
        raise BadInputError(
            f"template renders {len(text)} characters; the limit is {MAX_RENDERED_CHARS}"
        )
    return " ".join(text.split())


def sample_variables() -> dict[str, str]:
    """Plausible values for every known variable, to test-render a template before storing it."""
    return {
        "brief": "a steaming cup on a wooden table",
        "brand": "Acme Coffee",
        "tone": "warm, crafted",
        "required": "the cup",
        "palette_clause": "in the brand colours espresso #4b2e2a",
        "style_notes": "soft morning light",
        "modifiers": "balanced exposure",
        "brand_negative": "text, watermark",
        "negative_extra": "neon green",
    }


def compose_check(body: str, negative_body: str) -> None:
    """What a template must pass before it is stored: both bodies validate and render."""
    validate_template(body, field="body")
    validate_template(negative_body, field="negative_body")
    sample = sample_variables()
    render(body, sample)
    render(negative_body, sample)
    empty = dict.fromkeys(sample, "") | {"brief": sample["brief"], "brand": sample["brand"]}
    render(body, empty)
