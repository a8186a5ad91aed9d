"""reader position in the database; confidence rating setting

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 09:00:00

* ``readers.last_seq`` / ``readers.last_seen_at``: where each reader last was, so that a
  reader who moves to another workstation (a shared server database) resumes there.
* ``studies.ask_confidence``: readers rate their confidence (1-5) with every vote; existing
  studies did not ask (server default false).

Plain ``ADD COLUMN`` on every backend, never a batch table copy: on SQLite a copy drops and
recreates ``readers``, and with foreign keys on, dropping it would cascade to the assignments
and votes that reference it. The string default ``'0'`` keeps Alembic from choosing a copy and
is a valid boolean literal on SQLite and PostgreSQL alike.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('studies', sa.Column('ask_confidence', sa.Boolean(), nullable=False, server_default='0'))
    op.add_column('readers', sa.Column('last_seq', sa.Integer(), nullable=True))
    op.add_column('readers', sa.Column('last_seen_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    # SQLite 3.35+ and PostgreSQL drop a column in place (no table copy, see above).
    op.drop_column('readers', 'last_seen_at')
    op.drop_column('readers', 'last_seq')
    op.drop_column('studies', 'ask_confidence')
