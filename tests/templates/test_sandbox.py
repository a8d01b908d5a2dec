"""The template sandbox: what a template may use, and what it may not, at store and render time."""

from __future__ import annotations

import pytest

from brandloop.errors import BadInputError
from brandloop.templates.sandbox import (
    KNOWN_VARIABLES,
    compose_check,
    render,
    sample_variables,
    validate_template,
)

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ brief.__class__ }}",
    "{{ brief|attr('__class__') }}",
    "{{ brief['__class__'] }}",
    "{{ self._TemplateReference__context }}",
    "{{ namespace() }}",
    "{% include '/etc/passwd' %}",
    "{% import 'x' as y %}",
    "{% extends 'base' %}",
    "{% for c in brief %}{% for d in brief %}{{ c }}{% endfor %}{% endfor %}",
    "{% set x = brief %}{{ x }}",
    "{{ brief.upper() }}",
    "{{ brief|format(1) }}",
]


@pytest.mark.parametrize("body", ESCAPES)
def test_sandbox_escapes_and_unsafe_constructs_are_refused_at_store_time(body: str) -> None:
    with pytest.raises(BadInputError):
        validate_template(body)


@pytest.mark.parametrize(
    "body",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ brief.__class__ }}",
        "{{ brief.upper() }}",
        "{{ lipsum() }}",
        "{% include '/etc/passwd' %}",
    ],
)
def test_render_refuses_escapes_even_without_validation(body: str) -> None:
    with pytest.raises(BadInputError, match="does not render"):
        render(body, sample_variables())


def test_undefined_variable_is_named_in_the_error() -> None:
    with pytest.raises(BadInputError, match=r"undefined variable\(s\) colour, mood"):
        validate_template("{{ brief }} in {{ colour }} {{ mood }}")
    with pytest.raises(BadInputError, match="does not render"):
        render("{{ colour }}", sample_variables())


def test_a_syntax_error_is_bad_input() -> None:
    with pytest.raises(BadInputError, match="does not parse"):
        validate_template("{{ brief ")


def test_allowed_constructs_render() -> None:
    body = (
        "{{ brief | capitalize }} for {{ brand | upper }}"
        "{% if required %}, with {{ required }}{% else %}, plain{% endif %}"
        "{{ ' ' ~ tone if tone else '' }}"
    )
    assert validate_template(body) == {"brief", "brand", "required", "tone"}
    text = render(body, sample_variables())
    assert text.startswith("A steaming cup on a wooden table for ACME COFFEE, with the cup")


def test_every_known_variable_is_provided_by_the_sample() -> None:
    assert set(sample_variables()) == set(KNOWN_VARIABLES)
    compose_check(" ".join(f"{{{{ {v} }}}}" for v in KNOWN_VARIABLES), "{{ brand_negative }}")


def test_oversized_templates_are_refused() -> None:
    with pytest.raises(BadInputError, match="limit"):
        validate_template("x" * 9000)


@pytest.mark.parametrize(
    "body",
    ["{{ ''.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}", "{{ brief.upper() }}"],
)
def test_the_sandbox_itself_refuses_escapes_behind_validation(body: str) -> None:
    """Defence in depth: even a body that skipped validation cannot reach Python internals."""
    from jinja2 import TemplateError

    from brandloop.templates.sandbox import _env

    with pytest.raises(TemplateError):
        _env.from_string(body).render(**sample_variables())
