"""reader PINs, the administrator's password, the authenticated reader of each vote

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 15:00:00

* ``studies.admin_hash``: scrypt hash of the study administrator's password
  (``core.study.credentials``); NULL: an open study (every study made before this revision).
* ``readers.pin_hash``: scrypt hash of the reader's PIN; NULL in an open study.
* ``votes.reader_id`` / ``votes.auth``: the reader authenticated when the vote was cast and how
  (``pin`` or ``open``); NULL for earlier, imported and unauthenticated engine-API votes. No
  foreign key: SQLite cannot add one in place, and a table copy is what 0002 rules out.

Plain ``ADD COLUMN`` of nullable columns (no table copy; see 0002 for why that matters).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('studies', sa.Column('admin_hash', sa.String(length=200), nullable=True))
    op.add_column('readers', sa.Column('pin_hash', sa.String(length=200), nullable=True))
    op.add_column('votes', sa.Column('reader_id', sa.Integer(), nullable=True))
    op.add_column('votes', sa.Column('auth', sa.String(length=10), nullable=True))


def downgrade() -> None:
    op.drop_column('votes', 'auth')
    op.drop_column('votes', 'reader_id')
    op.drop_column('readers', 'pin_hash')
    op.drop_column('studies', 'admin_hash')
