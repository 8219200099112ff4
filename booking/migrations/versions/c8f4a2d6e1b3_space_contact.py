"""spaces: contact phone and e-mail

Whom a customer calls or writes to about a booking: after the cancellation deadline the
booking page offers these instead of a cancel button. Optional (empty by default); a
space without them shows its operator's name and its address.

Revision ID: c8f4a2d6e1b3
Revises: 5e1f0c9a7d22
Create Date: 2026-12-08 00:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c8f4a2d6e1b3'
down_revision = '5e1f0c9a7d22'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('spaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('contact_phone', sa.String(length=30), server_default='',
                                      nullable=False))
        batch_op.add_column(sa.Column('contact_email', sa.String(length=254), server_default='',
                                      nullable=False))


def downgrade():
    with op.batch_alter_table('spaces', schema=None) as batch_op:
        batch_op.drop_column('contact_email')
        batch_op.drop_column('contact_phone')
