"""catalogue change log

Issue 22: the search catalogue follows a change log, one row per space a transaction
changed (catalogue_changes), instead of one version number that every edit updated as its
last lock and that made every process read the whole catalogue again.

Revision ID: b6e2d9c4a170
Revises: a9e4c2b7d6f1
Create Date: 2026-12-06 11:30:00

"""
from alembic import op
import sqlalchemy as sa

import booking.models.base


# revision identifiers, used by Alembic.
revision = 'b6e2d9c4a170'
down_revision = 'a9e4c2b7d6f1'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('catalogue_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('space_id', sa.Integer(), nullable=True),
    sa.Column('changed_at', booking.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('txid', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalogue_changes'))
    )
    with op.batch_alter_table('catalogue_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalogue_changes_txid'), ['txid'], unique=False)
    # Every process reads the whole catalogue once more (a row for everything).
    op.execute(sa.text("INSERT INTO catalogue_changes (space_id, changed_at) "
                       "VALUES (NULL, CURRENT_TIMESTAMP)"))
    op.drop_table('catalogue_version')


def downgrade():
    op.create_table('catalogue_version',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_catalogue_version_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalogue_version'))
    )
    op.execute(sa.text("INSERT INTO catalogue_version (id, version) VALUES (1, 1)"))
    with op.batch_alter_table('catalogue_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_catalogue_changes_txid'))
    op.drop_table('catalogue_changes')
