"""Migration 1000 on campaigns made before it, on SQLite and PostgreSQL: each campaign gets
the id of the brand that had its name, in its tenant, when it was created - followed through
the renames since, never a brand created after it or one that took the name later, never a
brand of another tenant; a campaign whose brand cannot be told keeps NULL (its consistency is
not measured: docs/http-api.md, Campaigns). The same cases as migration 0950's for threads."""

from __future__ import annotations

import sqlalchemy as sa

from tests.registry.test_thread_brand_migration import (
    THREADS,
    add_brands_and_renames,
    upgrade,
    upgrade_down,
)

CAMPAIGNS = {thread_id.replace("thr_", "cmp_"): row for thread_id, row in THREADS.items()}


def test_campaigns_get_the_id_of_the_brand_they_were_created_for(empty_url: str) -> None:
    upgrade(empty_url, "0990")
    engine = sa.create_engine(empty_url)
    with engine.begin() as conn:
        add_brands_and_renames(conn)
        for campaign_id, (tenant, brand, created, _) in CAMPAIGNS.items():
            conn.execute(
                sa.text(
                    "INSERT INTO campaigns (id, tenant, name, brand, budget_usd, assets, "
                    "created_at) VALUES (:id, :tenant, 'autumn', :brand, 1, '[]', :at)"
                ),
                {"id": campaign_id, "tenant": tenant, "brand": brand, "at": created},
            )
    engine.dispose()

    upgrade(empty_url, "heads")
    engine = sa.create_engine(empty_url)
    with engine.connect() as conn:
        found = dict(conn.execute(sa.text("SELECT id, brand_id FROM campaigns")).all())
        names = dict(conn.execute(sa.text("SELECT id, brand FROM campaigns")).all())
    engine.dispose()
    assert found == {campaign_id: row[3] for campaign_id, row in CAMPAIGNS.items()}
    assert names == {campaign_id: row[1] for campaign_id, row in CAMPAIGNS.items()}

    upgrade_down(empty_url, "0990")  # and back: the column goes, the campaigns stay
    engine = sa.create_engine(empty_url)
    with engine.connect() as conn:
        assert "brand_id" not in {c["name"] for c in sa.inspect(conn).get_columns("campaigns")}
        assert conn.execute(sa.text("SELECT count(*) FROM campaigns")).scalar() == len(CAMPAIGNS)
    engine.dispose()
