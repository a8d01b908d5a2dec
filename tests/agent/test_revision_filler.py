"""The rules read a follow-up conservatively: a part becomes a clause of the brief only if it
describes something to show (a content word that is not filler), and a removal only if it names
such a thing. An outside tester's follow-ups each started a paid run: "drop the" took "the" out
of the brief and put it in the negative prompt, "remove it" avoided "it", and "ok", "perfect,
thank you", "undo" or "maybe warmer?" were pasted into the brief as clauses."""

from __future__ import annotations

import pytest

from brandloop.agent.revision import BriefState, apply_rules, asks_nothing

PARK = "a latte on the bench in a park"
BENCH = "a latte on a bench"


@pytest.mark.parametrize(
    "instruction",
    [
        # removals of words that name nothing: articles, pronouns, prepositions, quantifiers
        "drop the", "drop a", "remove on", "remove it", "no more", "remove them", "drop this",
        "delete all", "get rid of it", "remove the it", "drop the, a and on",
        # acknowledgements and filler
        "ok", "OK.", "okay!", "perfect, thank you", "lol", "thanks!", "yes", "great", "hmm",
        "ok, thanks", "cool cool", "nice one",
        # undo-ish wording the rules cannot read
        "bring back", "undo", "go back to the previous one", "no, the other way", "revert",
        "undo that please", "put it back", "the way it was before",
    ],
)  # fmt: skip
def test_a_follow_up_naming_nothing_asks_for_nothing(instruction: str) -> None:
    for brief in (PARK, BENCH):
        state = BriefState(brief=brief, avoid=["people"], shifts=["warmer"])
        edit = apply_rules(state, instruction)
        assert edit.after == brief, instruction
        assert edit.removed == [] and edit.added == [], instruction
        assert edit.avoid == ["people"] and edit.all_shifts == ["warmer"], instruction
        assert asks_nothing(instruction), instruction


@pytest.mark.parametrize("instruction", ["drop the", "drop a", "remove on", "no more"])
def test_a_non_content_removal_beside_an_edit_removes_nothing(instruction: str) -> None:
    edit = apply_rules(BriefState(brief=PARK), f"{instruction}, add steam")
    assert edit.after == f"{PARK}, steam" and edit.removed == [] and edit.avoid == []
    assert not asks_nothing(f"{instruction}, add steam")


@pytest.mark.parametrize(
    ("instruction", "shift"),
    [
        ("any chance it could be warmer?", "warmer"),
        ("can we try it a bit warmer?", "warmer"),
        ("maybe warmer?", "warmer"),
        ("perhaps a little cooler", "cooler"),
        ("could you try making it darker?", "darker"),
        ("not so dark please", "brighter"),
        ("not as bright", "darker"),
        ("less warm", "cooler"),
        ("too dark", "brighter"),
        ("it's a bit too warm", "cooler"),
        ("ok, warmer", "warmer"),
    ],
)
def test_a_hedged_or_negated_shift_is_the_shift(instruction: str, shift: str) -> None:
    edit = apply_rules(BriefState(brief=BENCH), instruction)
    assert edit.after == BENCH and edit.added == [] and edit.removed == [], edit
    assert edit.shifts == [shift] and edit.avoid == []


@pytest.mark.parametrize(
    "instruction",
    [
        "I don't like the bench",
        "hmm, not sure about the bench",
        "I'm not a fan of the bench",
        "i don’t want the bench",
    ],
)
def test_a_dislike_is_a_removal(instruction: str) -> None:
    edit = apply_rules(BriefState(brief=BENCH), instruction)
    assert edit.after == "a latte" and edit.removed == edit.avoid == ["bench"], edit
    assert edit.added == []


@pytest.mark.parametrize(
    ("instruction", "after", "thing"),
    [
        ("replace the bench with a chair", "a latte on a chair", "a chair"),
        ("swap the bench for a table", "a latte on a table", "a table"),
        ("swap out the bench for a stool", "a latte on a stool", "a stool"),
        ("a chair instead of the bench", "a latte on a chair", "a chair"),
        ("replace the bench with the chair", "a latte on the chair", "the chair"),
    ],
)
def test_a_replacement_removes_the_old_thing_and_adds_the_new(
    instruction: str, after: str, thing: str
) -> None:
    edit = apply_rules(BriefState(brief=BENCH, avoid=[thing.split()[-1]]), instruction)
    assert edit.after == after and edit.removed == ["bench"] and edit.added == [thing], edit
    assert edit.avoid == ["bench"]


def test_a_replacement_of_a_thing_not_in_the_brief_adds_the_new_thing() -> None:
    edit = apply_rules(BriefState(brief="a latte on a table"), "replace the bench with a chair")
    assert edit.after == "a latte on a table, a chair"
    assert edit.removed == ["bench"] and edit.added == ["a chair"]


def test_a_shift_with_a_question_and_a_frame_word_alone() -> None:
    instruction = "Can it be warmer? Also, what formats do you have?"
    edit = apply_rules(BriefState(brief=BENCH), instruction)
    assert edit.after == BENCH and edit.added == [] and edit.shifts == ["warmer"]
    assert edit.questions == ["what formats do you have"]


def test_filler_beside_an_edit_is_left_out_of_the_brief() -> None:
    edit = apply_rules(BriefState(brief=BENCH), "ok, perfect. undo that and add steam, lol")
    assert edit.after == f"{BENCH}, steam" and edit.added == ["steam"]
    assert edit.ignored == ["undo that", "lol"]  # "ok" and "perfect" are frame words, dropped


@pytest.mark.parametrize(
    ("instruction", "after"),
    [
        ("add a red umbrella", f"{BENCH}, a red umbrella"),
        ("make it more minimal", f"{BENCH}, more minimal"),
        ("zoom in", f"{BENCH}, zoom in"),
        ("steam rising from the cup", f"{BENCH}, steam rising from the cup"),
        ("no people", BENCH),
        ("drop the bench too", "a latte"),
    ],
)
def test_content_still_edits(instruction: str, after: str) -> None:
    edit = apply_rules(BriefState(brief=BENCH), instruction)
    assert edit.after == after, edit
    assert not asks_nothing(instruction)


@pytest.mark.parametrize(
    "instruction", ["the bench is fine", "the colours look great", "great job!", "nice work"]
)
def test_approval_asks_for_nothing(instruction: str) -> None:
    edit = apply_rules(BriefState(brief=BENCH), instruction)
    assert edit.after == BENCH and edit.added == [] and asks_nothing(instruction)


def test_keeping_a_thing_in_the_brief_changes_nothing_and_keeping_an_avoided_one_brings_it_back() -> (
    None
):
    assert apply_rules(BriefState(brief=BENCH), "keep the bench").after == BENCH
    edit = apply_rules(BriefState(brief="a latte", avoid=["bench"]), "keep the bench")
    assert edit.after == "a latte, the bench" and edit.avoid == []


def test_a_replacement_of_a_thing_not_named_adds_the_new_thing() -> None:
    edit = apply_rules(BriefState(brief=BENCH), "replace it with a chair")
    assert edit.after == f"{BENCH}, a chair" and edit.removed == [] and edit.added == ["a chair"]


@pytest.mark.parametrize(
    ("instruction", "shift", "removed"),
    [
        ("a bit warmer 🙏", "warmer", []),
        ("warmer👍🏽", "warmer", []),
        ("\u200bwarmer", "warmer", []),
        ("war\u00admer", "warmer", []),  # a soft hyphen shows nothing
        ("remove\u200bthe croissant", None, ["croissant"]),
        ("Not quite - can you make it brighter?", "brighter", []),
        ("not quite — darker", "darker", []),
    ],
)
def test_emoji_and_invisible_characters_do_not_hide_what_is_asked(
    instruction: str, shift: str | None, removed: list[str]
) -> None:
    """An emoji or an invisible character kept a shift from being read and went into the
    brief; "Not quite - make it brighter" put "quite - can you make it brighter" in the negative
    prompt (outside tester)."""
    brief = "a coffee cup on a wooden counter with a croissant"
    edit = apply_rules(BriefState(brief=brief), instruction)
    assert edit.shifts == ([shift] if shift else []), edit
    assert edit.removed == removed, edit
    assert edit.added == [] and edit.avoid == removed, edit
    for char in "🙏👍\u200b\u00ad-—":
        assert char not in edit.after, edit


@pytest.mark.parametrize("instruction", ["👍", "🙏🏽", "\u200b", "-", "— –"])
def test_an_emoji_or_a_dash_alone_asks_for_nothing(instruction: str) -> None:
    assert asks_nothing(instruction)
    edit = apply_rules(BriefState(brief=PARK, avoid=["people"]), instruction)
    assert edit.after == PARK and edit.avoid == ["people"]
