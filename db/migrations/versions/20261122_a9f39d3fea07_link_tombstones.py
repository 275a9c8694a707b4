"""Link tombstones: a deleted photo's download links stay, pointing at no photo.

download_links.photo_id becomes nullable and its foreign key ON DELETE SET NULL instead of
CASCADE, so the download page can answer "this photo was deleted" (410) instead of "not found".

Revision ID: a9f39d3fea07
Revises: d1dee3b8ffb1
Create Date: 2026-11-22 10:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a9f39d3fea07"
down_revision: str | Sequence[str] | None = "d1dee3b8ffb1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PHOTO_FOREIGN_KEY = "fk_download_links_photo_id_photos"


def upgrade() -> None:
    # Batch mode: SQLite cannot alter a column or a foreign key in place, so the table is rebuilt there.
    with op.batch_alter_table("download_links") as batch:
        batch.drop_constraint(PHOTO_FOREIGN_KEY, type_="foreignkey")
        batch.alter_column("photo_id", existing_type=sa.String(length=32), nullable=True)
        batch.create_foreign_key(PHOTO_FOREIGN_KEY, "photos", ["photo_id"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    # The old schema has no place for a link without a photo; the tombstones are lost.
    op.execute("DELETE FROM download_links WHERE photo_id IS NULL")
    with op.batch_alter_table("download_links") as batch:
        batch.drop_constraint(PHOTO_FOREIGN_KEY, type_="foreignkey")
        batch.alter_column("photo_id", existing_type=sa.String(length=32), nullable=False)
        batch.create_foreign_key(PHOTO_FOREIGN_KEY, "photos", ["photo_id"], ["id"], ondelete="CASCADE")
