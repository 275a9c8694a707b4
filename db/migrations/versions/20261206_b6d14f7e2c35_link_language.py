"""Link language: each download link records the language the visitor used at the booth.

download_links.language: a catalogue code ("fr", "zh_Hans"), so the phone page opens in the
language the visitor chose on the booth. NULL for every link made before, and for links made by
the public form or the API: their page follows the phone's own language.

Revision ID: b6d14f7e2c35
Revises: a3d58e0c7b12
Create Date: 2026-12-06 22:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b6d14f7e2c35"
down_revision: str | Sequence[str] | None = "a3d58e0c7b12"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode, like the earlier revisions (SQLite rebuilds the table where it must); a nullable column only.
    with op.batch_alter_table("download_links") as batch:
        batch.add_column(sa.Column("language", sa.String(length=16), nullable=True))


def downgrade() -> None:
    # The links' languages are lost: their pages follow the phone's language.
    with op.batch_alter_table("download_links") as batch:
        batch.drop_column("language")
