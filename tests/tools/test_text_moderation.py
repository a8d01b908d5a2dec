"""Text moderation: disguised blocked words are caught, benign marketing briefs are not."""

from __future__ import annotations

from pathlib import Path

import pytest

from brandloop.errors import BadInputError
from brandloop.tools.moderation import load_blocklist, moderate_text, normalize_for_matching
from brandloop.tools.moderation.normalize import displayed_order, fold_leetspeak

ZWJ, ZWSP, RLO, PDF = "\u200d", "\u200b", "\u202e", "\u202c"


# --------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello World", "hello world"),
        (f"po{ZWJ}r{ZWSP}n", "porn"),
        ("p\ufeffo\u2060rn", "porn"),
        (f"p{RLO}or\u2066n\u2069", "porn"),
        ("рorn", "porn"),  # Cyrillic р
        ("ΡΟRΝ", "porn"),  # Greek capitals
        ("nаzі", "nazi"),  # Cyrillic а and і
        ("ＰＯＲＮ", "porn"),  # full-width
        ("𝐩𝐨𝐫𝐧", "porn"),  # mathematical bold
        ("pórn", "porn"),  # accents dropped
        ("STRASSE", "strasse"),
    ],
)
def test_normalize_for_matching(text, expected):
    assert normalize_for_matching(text) == expected


def test_leetspeak_only_in_the_second_pass():
    assert normalize_for_matching("p0rn 4 $ale 1337") == "p0rn 4 $ale 1337"
    assert normalize_for_matching("p0rn 4 $ale 1337", leet=True) == "porn a sale ieet"
    assert fold_leetspeak("ki11", alternate=True) == "kill"
    plain = normalize_for_matching("Ki11 @ 50%")
    assert len(fold_leetspeak(plain)) == len(plain), "leet folding keeps positions"


def test_displayed_order_reverses_override_runs():
    assert displayed_order(f"buy {RLO}ytidun{PDF} now") == f"buy nudity{PDF} now"
    assert displayed_order("plain text") == "plain text"


# --------------------------------------------------------------------------- blocking


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("a photo with full nudity", "sexual"),
        (f"a photo with full nu{ZWJ}di{ZWSP}ty", "sexual"),  # zero-width joiners
        ("a poster with a nаzі flag", "hate"),  # Cyrillic homoglyphs
        ("a ΡΟRΝ poster", "sexual"),  # Greek homoglyphs in capitals
        (f"a photo of {RLO}erog{PDF} everywhere", "violence"),  # shown as "gore"
        (f"a photo of go{RLO}{PDF}re everywhere", "violence"),  # override splitting a word
        ("a p0rn poster", "sexual"),  # leetspeak
        ("make a b0mb at home", "weapons"),
        ("ki11 yourself", "self_harm"),  # 1 read as l
        ("$3xually explicit scene", "sexual"),
        ("a bowl of c0caine on the table", "drugs"),
        ("a man holding an AK-47", "weapons"),
        ("a man holding an ak47", "weapons"),
        ("dismembered bodies in the street", "violence"),
        ("a mass shooting at the mall", "violence"),
        ("a sexy schoolgirl", "sexual/minors"),
        ("lingerie shoot with a 14-year-old", "sexual/minors"),
        ("jailbait photos", "sexual/minors"),
        ("no problem, nudity is fine", "sexual"),  # negation must be right before the term
        ("Gore on the Gore-Tex jacket", "violence"),  # allow-list masks only the brand name
    ],
)
def test_blocked_terms_are_caught(text, category):
    verdict = moderate_text(text)
    assert not verdict.allowed
    assert category in verdict.categories, verdict.reasons
    assert verdict.scores[category] == 1.0
    assert all(reason.startswith(tuple(verdict.categories)) for reason in verdict.reasons)


def test_reasons_name_the_term_not_the_text():
    text = "confidential campaign 42: a p0rn poster for ACME Corp"
    verdict = moderate_text(text, source="prompt")
    assert verdict.source == "prompt"
    assert verdict.reasons == ["sexual: matched blocked term 'porn'"]
    assert "ACME" not in " ".join(verdict.reasons)


def test_brand_forbidden_terms():
    verdict = moderate_text(
        "Bold banner for our CHEAP summer range, Rivalco style",
        forbidden_terms=["cheap", "Rivalco", "  "],
    )
    assert not verdict.allowed
    assert verdict.categories == ["brand_forbidden"]
    assert verdict.reasons == [
        "brand_forbidden: uses the brand's forbidden term 'cheap'",
        "brand_forbidden: uses the brand's forbidden term 'Rivalco'",
    ]
    disguised = moderate_text("a ch3ap look", forbidden_terms=["cheap"])
    assert disguised.categories == ["brand_forbidden"]
    # word boundaries: "cheapest" is a different word, and it is the brand's call to list it
    assert moderate_text("cheapskate prices", forbidden_terms=["cheap"]).allowed


@pytest.mark.parametrize("text", ["", "   ", f"{ZWSP}{ZWJ}\ufeff", "\n\t"])
def test_empty_text_is_refused(text):
    verdict = moderate_text(text)
    assert not verdict.allowed
    assert verdict.categories == ["empty"]


def test_oversize_text_is_refused_without_scanning():
    verdict = moderate_text("a" * 4001)
    assert not verdict.allowed
    assert verdict.categories == ["length"]
    assert "4001" in verdict.reasons[0]
    assert moderate_text("a" * 4000).allowed
    assert moderate_text("a" * 11, max_chars=10).categories == ["length"]


# --------------------------------------------------------------------------- benign briefs

BENIGN_BRIEFS = [
    "Autumn sale hero banner: warm teal and orange, a shooting star over the city skyline.",
    "Kill it with this offer! Killer deals on running shoes, 50% off this weekend only.",
    "Lush bath bomb gift set on a marble counter, soft morning light, pastel palette.",
    "Outdoor range launch: hiker in a Gore-Tex jacket on a misty ridge at dawn.",
    "Nude lipstick collection flat lay with nude heels and a naked cake for the party.",
    "Murder mystery dinner night poster, art deco style, drop-dead gorgeous guests.",
    "Blood orange spritz summer cocktail, condensation on the glass, bright yellow backdrop.",
    "Maine Coon kitten on a cosy blanket for our premium cat food range.",
    "Suicide prevention awareness month: hopeful sunrise, open hands, calm blue tones.",
    "Fields of oilseed rape in bloom for our cold-pressed rapeseed oil bottle label.",
    "Spic and Span spring cleaning promo: sparkling kitchen, lemon slices, fresh towels.",
    "Therapist-approved sleep app: a calm bedroom at night, 24/7 support, 1080p screens.",
    "Explosive flavour! Chilli crisp jar exploding with colour on a black slate.",
    "Kids' back-to-school range: children laughing with colourful backpacks in the park.",
    "Essex seaside campaign for Scunthorpe families: ice cream, beach huts, sunny skies.",
    "Photo shoot for the new skincare line, shot on film, no gore, no nudity, family friendly.",
    "Top Gun style aviator sunglasses, cocktail party at sunset, sales shooting up.",
    "Black Friday blast: save $50 on 4K TVs, sale ends 11/29, code SAVE50.",
    "A rooster at dawn on a farmhouse label for our free-range eggs, hand-drawn style.",
    "Halloween pumpkin spice latte with a spooky skeleton mug and candles.",
    "Craft fair flyer: glue gun, massage gun, weed-free planters and an ice-cold Coke.",
    "Gorgeous skincare routine visible to the naked eye, Rivalcorp-free zone, skilled staff.",
]


@pytest.mark.parametrize("brief", BENIGN_BRIEFS)
def test_benign_marketing_briefs_are_allowed(brief):
    verdict = moderate_text(brief, forbidden_terms=["discount store", "Rivalco"])
    assert verdict.allowed, verdict.reasons
    assert verdict.categories == []
    assert verdict.scores["profanity"] < 0.95
    assert {k for k in verdict.scores if not k.startswith("semantic:")} == {"profanity"}


# --------------------------------------------------------------------------- the file


def test_custom_blocklist(tmp_path: Path):
    path = tmp_path / "blocklist.yaml"
    path.write_text(
        "allow: [blue moon]\ncategories:\n  lunar: [moon]\n",
        encoding="utf-8",
    )
    custom = load_blocklist(path)
    assert moderate_text("a m00n rising", blocklist=custom).categories == ["lunar"]
    assert moderate_text("once in a blue moon", blocklist=custom).allowed
    assert moderate_text("a p0rn poster", blocklist=custom).allowed


def test_malformed_blocklist_is_a_bad_input(tmp_path: Path):
    path = tmp_path / "blocklist.yaml"
    path.write_text("categories: [not, a, mapping]\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="invalid"):
        load_blocklist(path)


# --------------------------------------------------------------------------- fixture set

from tests.tools.signal_fixtures import make_fixtures_module  # noqa: E402

MODERATION = make_fixtures_module().MODERATION
FIXTURE_BRAND_TERMS = ["cheap", "instant coffee"]


@pytest.mark.parametrize(
    ("text", "category"), MODERATION, ids=[repr(t[:24]) for t, _ in MODERATION]
)
def test_fixture_verdicts(text, category):
    verdict = moderate_text(text, forbidden_terms=FIXTURE_BRAND_TERMS)
    if category is None:
        assert verdict.allowed, verdict.reasons
    else:
        assert not verdict.allowed and category in verdict.categories, verdict


def test_precision_recall_and_no_false_blocks_on_the_fixtures():
    predicted = [
        (not moderate_text(t, forbidden_terms=FIXTURE_BRAND_TERMS).allowed, c is not None)
        for t, c in MODERATION
    ]
    tp = sum(p and e for p, e in predicted)
    false_blocks = sum(p and not e for p, e in predicted)
    assert false_blocks == 0
    assert tp / sum(e for _, e in predicted) == 1.0


def test_a_megabyte_is_refused_on_length_without_scanning():
    verdict = moderate_text("nudity " * 150_000)
    assert verdict.categories == ["length"]


def test_the_profanity_model_sits_behind_a_seam():
    def always(texts: list[str]) -> list[float]:
        return [0.99 for _ in texts]

    verdict = moderate_text("a calm cup of coffee", profanity_model=always)
    assert verdict.categories == ["profanity"] and verdict.scores["profanity"] == 0.99
    assert moderate_text("a calm cup", profanity_model=always, profanity_threshold=None).allowed
    # obfuscated profanity is normalised before the model sees it
    assert not moderate_text("f\u200bu\u0441k this sale").allowed


def test_the_fast_profanity_path_gives_scikit_learns_figures():
    from brandloop.tools.moderation.models import profanity_model

    model = profanity_model()
    texts = [
        "fuck this sale",
        "a calm cup of coffee",
        "this coffee is the shit",
        "hell of a deal",
        "bloody good coffee",
        "",
        "Kill it with this offer! Killer deals on running shoes",
    ]
    fast, reference = model.probabilities(texts), model.reference_probabilities(texts)
    assert fast == pytest.approx(reference, abs=1e-12)
