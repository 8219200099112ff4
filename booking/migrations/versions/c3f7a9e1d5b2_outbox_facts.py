"""outbox: facts (the snapshot a booking's mail is rendered from after commit)

A booking's mails are no longer rendered inside the transaction that decides it (under
the unit's lock): the transaction stores what the mail says — the booking, its unit and
space, the people and the extras as the event left them — in `facts`, and the outbox
worker renders the message from them before its first send (and keeps the bytes, so a
retry sends the same). Null for the rows that carry their message already.

Revision ID: c3f7a9e1d5b2
Revises: b6e2d9c4a170
Create Date: 2026-12-06 12:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c3f7a9e1d5b2'
down_revision = 'b6e2d9c4a170'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('facts', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('facts')
