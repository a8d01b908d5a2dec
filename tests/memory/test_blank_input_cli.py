"""A blank style note or search query is bad input (exit 2, one line), never a policy refusal
(exit 3), and never an empty answer: the same whether or not the brand has any memory yet."""

from __future__ import annotations

import pytest

from brandloop.agent.runner import open_memory
from brandloop.settings import Settings
from tests.memory.test_memory_cli import ACME, brand_id_of, cli
from tests.memory.test_note_moderation_cli import audit_entries


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_note_or_query_is_exit_2_with_or_without_memory(
    capsys: pytest.CaptureFixture[str], settings: Settings, blank: str
) -> None:
    assert cli(capsys, "brands", "add", ACME)[0] == 0  # memory commands add no brand
    # the brand has no memory yet: an empty search was exit 0 with an empty table
    code, out, err = cli(capsys, "memory", "search", blank, "--brand", ACME)
    assert code == 2, (out, err)
    assert out == "" and err.count("\n") == 1 and "query is empty" in err
    # a blank note was exit 3, "refused ... fails moderation (empty)", and audited as such
    code, out, err = cli(capsys, "memory", "add", blank, "--brand", ACME)
    assert code == 2, (out, err)
    assert out == "" and err.count("\n") == 1 and "note is empty" in err
    assert "moderation" not in err
    assert audit_entries(settings) == []
    memory = open_memory(settings)
    brand = brand_id_of(settings, "Acme Coffee")
    assert memory.count(tenant="default", brand=brand) == 0

    code, out, _ = cli(capsys, "memory", "add", "always a soft morning light", "--brand", ACME)
    assert code == 0 and "noted for" in out
    code, out, err = cli(capsys, "memory", "search", blank, "--brand", "Acme Coffee")
    assert code == 2 and out == "" and "query is empty" in err
    # the blank note stored nothing, and neither the blank note nor the search lost the note
    code, out, err = cli(capsys, "memory", "add", blank, "--brand", "Acme Coffee")
    assert code == 2 and "note is empty" in err
    assert memory.count(tenant="default", brand=brand) == 1
