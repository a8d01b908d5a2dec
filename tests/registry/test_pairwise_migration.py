"""Migration 0990 on SQLite and PostgreSQL: each reviewer keeps one judgement per pair of
images (the latest, whichever side each image was shown on), and the index then holds them
to it; another reviewer's, another axis's and another tenant's judgements of the pair stay."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.registry.test_thread_brand_migration import upgrade, upgrade_down

A, B, C = "a" * 64, "b" * 64, "c" * 64
JUDGEMENTS = sa.table(
    "pairwise_judgements",
    *(sa.column(c) for c in ("id", "tenant", "brand", "axis", "left_sha256", "right_sha256",
                             "left_ref", "right_ref", "winner", "principal", "created_at")),
)  # fmt: skip


def _judged(tenant: str, axis: str, principal: str, left: str, right: str, winner: str) -> dict:
    return {
        "tenant": tenant, "brand": "Acme", "axis": axis, "left_sha256": left,
        "right_sha256": right, "left_ref": f"ref-{left[0]}", "right_ref": f"ref-{right[0]}",
        "winner": winner, "principal": principal, "created_at": "2027-01-01 00:00:00",
    }  # fmt: skip


def test_each_reviewer_keeps_the_latest_judgement_of_a_pair(empty_url: str) -> None:
    upgrade(empty_url, "0980")
    engine = sa.create_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(
            JUDGEMENTS.insert(),
            [
                _judged("acme", "model", "lee", A, B, "left"),
                _judged("acme", "model", "lee", B, A, "left"),  # the same pair, later: B won
                _judged("acme", "model", "ana", A, B, "right"),  # another reviewer
                _judged("acme", "template", "lee", A, B, "tie"),  # another axis
                _judged("bloom", "model", "lee", A, B, "left"),  # another tenant
                _judged("acme", "model", "lee", A, C, "left"),  # another pair
            ],
        )
    engine.dispose()

    upgrade(empty_url, "0990")

    engine = sa.create_engine(empty_url)
    with engine.begin() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT tenant, axis, principal, left_sha256, winner, pair_low, pair_high "
                "FROM pairwise_judgements ORDER BY id"
            )
        ).all()
        assert [tuple(r) for r in rows] == [
            ("acme", "model", "lee", B, "left", A, B),
            ("acme", "model", "ana", A, "right", A, B),
            ("acme", "template", "lee", A, "tie", A, B),
            ("bloom", "model", "lee", A, "left", A, B),
            ("acme", "model", "lee", A, "left", A, C),
        ]
        with pytest.raises(sa.exc.IntegrityError):
            conn.execute(
                sa.text(
                    "INSERT INTO pairwise_judgements (tenant, brand, axis, left_sha256, "
                    "right_sha256, left_ref, right_ref, winner, principal, pair_low, "
                    "pair_high, created_at) VALUES ('acme', 'Acme', 'model', :a, :b, 'x', "
                    "'y', 'tie', 'lee', :a, :b, '2027-01-02 00:00:00')"
                ),
                {"a": A, "b": B},
            )
    engine.dispose()
    upgrade_down(empty_url, "0980")  # and back: the columns and the index go
    engine = sa.create_engine(empty_url)
    names = {c["name"] for c in sa.inspect(engine).get_columns("pairwise_judgements")}
    engine.dispose()
    assert "pair_low" not in names and "pair_high" not in names
