"""users: notification switches; campaign slots: the operator's consent answer

Issue 19's notifications are switchable per person (bookings of their spaces, a morning
digest, campaign consents); an operator answers a municipality's proposed slot with a
reason when declining, and the municipality sees when it was answered.

Revision ID: d7a1c3e5f902
Revises: c8f4a2d6e1b3
Create Date: 2026-12-06 06:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd7a1c3e5f902'
down_revision = 'c8f4a2d6e1b3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notify_bookings', sa.Boolean(), server_default=sa.true(),
                                      nullable=False))
        batch_op.add_column(sa.Column('notify_digest', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.add_column(sa.Column('notify_consents', sa.Boolean(), server_default=sa.true(),
                                      nullable=False))
    with op.batch_alter_table('campaign_slots', schema=None) as batch_op:
        batch_op.add_column(sa.Column('consent_answered_at', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('consent_reason', sa.String(length=500), server_default='',
                                      nullable=False))


def downgrade():
    with op.batch_alter_table('campaign_slots', schema=None) as batch_op:
        batch_op.drop_column('consent_reason')
        batch_op.drop_column('consent_answered_at')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('notify_consents')
        batch_op.drop_column('notify_digest')
        batch_op.drop_column('notify_bookings')
