"""users: email_verified_at; bookings: index (company_id, created_at)

E-mail verification (issue 17, finding 4): when the owner of a user's address proved it
by the link mailed at sign-up. Accounts that exist before this revision are left
unverified (nobody ever proved their address); their account page offers a new link.

Company limits (finding 5): every booking counts the company's bookings created in the
last hour and day, under the company's lock; the index keeps that a short range scan.

Revision ID: 5e1f0c9a7d22
Revises: e3a7c5d91b20
Create Date: 2026-12-06 00:30:00.000000

"""
from alembic import op
import sqlalchemy as sa

import booking.models.base


# revision identifiers, used by Alembic.
revision = '5e1f0c9a7d22'
down_revision = 'e3a7c5d91b20'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_verified_at',
                                      booking.models.base.UTCDateTime(timezone=True),
                                      nullable=True))
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.create_index('ix_bookings_company_created', ['company_id', 'created_at'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.drop_index('ix_bookings_company_created')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('email_verified_at')
