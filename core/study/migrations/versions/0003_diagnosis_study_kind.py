"""diagnosis (MRMC ROC) study kind: rating scale, washout, modality sessions, ratings

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 12:00:00

* ``studies.rating_scale``: ``5-point`` or ``0-100`` for a diagnosis study; NULL for the
  preference kinds.
* ``studies.washout_days``: least time between a reader's modality sessions (diagnosis).
* ``assignments.session``: the modality session (0-based) a diagnosis query belongs to.
* ``votes.rating``: the reader's disease rating (diagnosis); NULL for preference votes.
* ``studies.presentation``: ``paper`` or ``native`` (``core.study.presentation``); NULL reads as paper.

Plain ``ADD COLUMN`` of nullable columns (no table copy; see 0002 for why that matters).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('studies', sa.Column('rating_scale', sa.String(length=10), nullable=True))
    op.add_column('studies', sa.Column('washout_days', sa.Float(), nullable=True))
    op.add_column('assignments', sa.Column('session', sa.Integer(), nullable=True))
    op.add_column('votes', sa.Column('rating', sa.Integer(), nullable=True))
    op.add_column('studies', sa.Column('presentation', sa.String(length=10), nullable=True))


def downgrade() -> None:
    op.drop_column('studies', 'presentation')
    op.drop_column('votes', 'rating')
    op.drop_column('assignments', 'session')
    op.drop_column('studies', 'washout_days')
    op.drop_column('studies', 'rating_scale')
