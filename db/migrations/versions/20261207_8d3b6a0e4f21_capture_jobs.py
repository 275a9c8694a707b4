"""Capture jobs: compositions queued for `artbooth worker` processes (serve --role web, PostgreSQL).

procrastinate's own tables (created by kiosk/capture_queue.py, on PostgreSQL only) hold each job's
place in the queue, its retries and the workers' heartbeats; capture_jobs holds what each job is
about and how it ended, so any node can answer for it and staff can see the queue's figures.

Revision ID: 8d3b6a0e4f21
Revises: 5c9e2f7a1d46
Create Date: 2026-12-07 04:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "8d3b6a0e4f21"
down_revision: str | Sequence[str] | None = "5c9e2f7a1d46"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported from db.models, like the earlier revisions'.
UTC_DATETIME = sa.DateTime(timezone=True)
JSON_DOCUMENT = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    # A new table only: nothing to rebuild, so no batch mode is needed even on SQLite.
    op.create_table(
        "capture_jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("kiosk_id", sa.String(length=64), nullable=True),
        sa.Column("node", sa.String(length=200), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("still_key", sa.String(length=255), nullable=False),
        sa.Column("request", JSON_DOCUMENT, nullable=False),
        sa.Column("photo_id", sa.String(length=32), nullable=True),
        sa.Column("result_key", sa.String(length=255), nullable=True),
        sa.Column("report", JSON_DOCUMENT, nullable=True),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("queued_at", UTC_DATETIME, nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=True),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["kiosk_id"], ["kiosks.id"], name=op.f("fk_capture_jobs_kiosk_id_kiosks"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capture_jobs")),
    )
    op.create_index(op.f("ix_capture_jobs_state"), "capture_jobs", ["state"], unique=False)
    op.create_index(op.f("ix_capture_jobs_queued_at"), "capture_jobs", ["queued_at"], unique=False)


def downgrade() -> None:
    # Finished jobs' records only: their photos are in the photos table.
    op.drop_index(op.f("ix_capture_jobs_queued_at"), table_name="capture_jobs")
    op.drop_index(op.f("ix_capture_jobs_state"), table_name="capture_jobs")
    op.drop_table("capture_jobs")
