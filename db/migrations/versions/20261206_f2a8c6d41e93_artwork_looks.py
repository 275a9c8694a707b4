"""Artwork looks: each artwork may fix the look it offers and the painted look's strength.

artworks.look is one of "realistic", "painted", "visitor" (the booth lets the visitor choose);
artworks.stylize_strength is the painted look's strength, 0 to 1. NULL in either: the service's
setting (look, stylize_strength), which is what every existing artwork keeps.

Revision ID: f2a8c6d41e93
Revises: e7b3c91a5d24
Create Date: 2026-12-06 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f2a8c6d41e93"
down_revision: str | Sequence[str] | None = "e7b3c91a5d24"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported from kiosk.settings and db.models, like the earlier revisions':
# a later change to the looks must not change what this revision did.
LOOK_CHECK = "look IS NULL OR look IN ('realistic', 'painted', 'visitor')"
STRENGTH_CHECK = "stylize_strength IS NULL OR stylize_strength BETWEEN 0 AND 1"


def upgrade() -> None:
    # Batch mode, as SQLite needs to add check constraints (the table is rebuilt there); nullable columns only.
    with op.batch_alter_table("artworks") as batch:
        batch.add_column(sa.Column("look", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("stylize_strength", sa.Float(), nullable=True))
        batch.create_check_constraint(op.f("ck_artworks_look"), LOOK_CHECK)
        batch.create_check_constraint(op.f("ck_artworks_stylize_strength"), STRENGTH_CHECK)


def downgrade() -> None:
    # Staff's per-artwork looks are lost: every artwork offers the service's look again.
    with op.batch_alter_table("artworks") as batch:
        batch.drop_constraint(op.f("ck_artworks_stylize_strength"), type_="check")
        batch.drop_constraint(op.f("ck_artworks_look"), type_="check")
        batch.drop_column("stylize_strength")
        batch.drop_column("look")
