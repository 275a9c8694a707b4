"""Photo capture size: each photo records the width and height of the visitor's photo it was made from.

photos.capture_width and photos.capture_height: the photo as it arrived (the booth's camera still,
or the uploaded file), the right way up. NULL for every photo stored before, whose size was not kept.

Revision ID: a3d58e0c7b12
Revises: f2a8c6d41e93
Create Date: 2026-12-06 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a3d58e0c7b12"
down_revision: str | Sequence[str] | None = "f2a8c6d41e93"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("capture_width", "capture_height")


def upgrade() -> None:
    # Batch mode, like the earlier revisions (SQLite rebuilds the table where it must); nullable columns only.
    with op.batch_alter_table("photos") as batch:
        for column in COLUMNS:
            batch.add_column(sa.Column(column, sa.Integer(), nullable=True))


def downgrade() -> None:
    # The recorded capture sizes are lost; the photos themselves are kept.
    with op.batch_alter_table("photos") as batch:
        for column in reversed(COLUMNS):
            batch.drop_column(column)
