"""Kiosk presence: where each booth was last seen, shared by every serve node.

kiosk_presence holds one row per booth and serve node: when that node last saw the booth, by the
database's clock (the one all nodes share), and that node's small report of it (camera, preview).
Every node reads every row, so each node's dashboard shows every booth's status (db/presence.py).

Revision ID: 5c9e2f7a1d46
Revises: b6d14f7e2c35
Create Date: 2026-12-07 02:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "5c9e2f7a1d46"
down_revision: str | Sequence[str] | None = "b6d14f7e2c35"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported from db.models, like the earlier revisions'.
UTC_DATETIME = sa.DateTime(timezone=True)
JSON_DOCUMENT = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    # A new table only: nothing to rebuild, so no batch mode is needed even on SQLite.
    op.create_table(
        "kiosk_presence",
        sa.Column("kiosk_id", sa.String(length=64), nullable=False),
        sa.Column("node", sa.String(length=200), nullable=False),
        sa.Column("last_seen", UTC_DATETIME, nullable=False),
        sa.Column("stats", JSON_DOCUMENT, nullable=False),
        sa.ForeignKeyConstraint(
            ["kiosk_id"], ["kiosks.id"], name=op.f("fk_kiosk_presence_kiosk_id_kiosks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("kiosk_id", "node", name=op.f("pk_kiosk_presence")),
    )


def downgrade() -> None:
    # Nothing is lost that the booths' next heartbeats do not write again.
    op.drop_table("kiosk_presence")
