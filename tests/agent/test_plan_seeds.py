"""``pick_seeds``: a run never plans an image request it sent already, nor one twice a round."""

from __future__ import annotations

from brandloop.agent.nodes.plan import ImageCall, pick_seeds

STUDIO: ImageCall = ("procedural/studio", None, "a cup on a bench", "text", 1024, 1024)
DRAFT: ImageCall = ("procedural/draft", None, "a cup on a bench", "text", 1024, 1024)


def test_remembered_seeds_come_first_each_once() -> None:
    sent: set[tuple[ImageCall, int]] = set()
    seeds, cursor, reused = pick_seeds(
        [STUDIO, STUDIO, STUDIO], recalled=[7, 7, 9], cursor=100, sent=sent
    )
    assert (seeds, cursor, reused) == ([7, 9, 100], 101, 2)
    assert sent == {(STUDIO, 7), (STUDIO, 9), (STUDIO, 100)}


def test_a_seed_sent_in_an_earlier_round_is_passed_over_for_the_same_call_only() -> None:
    sent = {(STUDIO, 100), (STUDIO, 101)}  # round one's calls
    seeds, cursor, reused = pick_seeds([STUDIO, DRAFT], recalled=[], cursor=100, sent=sent)
    # the studio call skips the seeds it was sent with
    assert (seeds, cursor, reused) == ([102, 103], 104, 0)
    # another model's call makes another image with the same seed: it may use it
    seeds, _, reused = pick_seeds([DRAFT], recalled=[101], cursor=500, sent={(STUDIO, 101)})
    assert (seeds, reused) == ([101], 1)


def test_the_cursor_wraps_within_the_seed_range() -> None:
    seeds, cursor, _ = pick_seeds([STUDIO, STUDIO], recalled=[], cursor=2**32 - 1, sent=set())
    assert seeds == [2**32 - 1, 0] and cursor == 2**32 + 1
