"""Booth pairing: a kiosk row holds the hash of its booth's credential and of a pending pairing code.

Kiosks are no longer created by opening their page; staff register them and pair each booth's
screen once. Existing kiosks start unpaired: staff pair them again from the Kiosks page.

Revision ID: e7b3c91a5d24
Revises: c4e1a7d2b390
Create Date: 2026-12-06 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e7b3c91a5d24"
down_revision: str | Sequence[str] | None = "c4e1a7d2b390"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported from db.models, like the earlier revisions'.
UTC_DATETIME = sa.DateTime(timezone=True)
COLUMNS = ("credential_hash", "paired_at", "pairing_code_hash", "pairing_expires_at")


def upgrade() -> None:
    # Batch mode, as SQLite needs for any table change beyond the simplest; nullable columns only.
    with op.batch_alter_table("kiosks") as batch:
        batch.add_column(sa.Column("credential_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("paired_at", UTC_DATETIME, nullable=True))
        batch.add_column(sa.Column("pairing_code_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("pairing_expires_at", UTC_DATETIME, nullable=True))


def downgrade() -> None:
    # The booths' credentials are lost: after an upgrade again, every booth is paired anew.
    with op.batch_alter_table("kiosks") as batch:
        for column in reversed(COLUMNS):
            batch.drop_column(column)
