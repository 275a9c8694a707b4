"""The museum's logo in the database, which every serve node and worker shares (it was a file in
each node's data folder: a worker elsewhere put no logo on its photos). A node that finds a logo
file of the old place and none in the database moves it in at start (kiosk/museum.py).

Revision ID: 2f6a9c1d7e58
Revises: 8d3b6a0e4f21
Create Date: 2026-12-07 05:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2f6a9c1d7e58"
down_revision: str | Sequence[str] | None = "8d3b6a0e4f21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "museum_logo",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("png", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_museum_logo")),
    )


def downgrade() -> None:
    # The logo is lost with it: upload it again after going back.
    op.drop_table("museum_logo")
