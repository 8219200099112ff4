"""outbox: parked messages (failed_at)

A message that keeps failing is parked after MAIL_MAX_ATTEMPTS attempts (or at once when
its recipient is an address SMTP cannot take) instead of being retried for ever; the
reason stays in last_error and a site admin can retry it.

Revision ID: 7c1e5a0d2f43
Revises: 50903480bb37
Create Date: 2026-12-05 15:30:00.000000

"""
from alembic import op
import sqlalchemy as sa

import booking.models.base


# revision identifiers, used by Alembic.
revision = '7c1e5a0d2f43'
down_revision = '50903480bb37'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_at', booking.models.base.UTCDateTime(timezone=True),
                                      nullable=True))


def downgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('failed_at')
