"""units: booking horizon (max_days_ahead)

How far ahead a unit may be booked: a booking's start at most max_days_ahead days after
today in Tokyo (default 365; 1 to 1830). Before it, bookings were accepted up to
9999-12-30.

Revision ID: b4d2e8f1a9c7
Revises: 7c1e5a0d2f43
Create Date: 2026-12-05 23:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b4d2e8f1a9c7'
down_revision = '7c1e5a0d2f43'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_days_ahead', sa.Integer(), server_default='365',
                                      nullable=False))
        batch_op.create_check_constraint(op.f('ck_units_max_days_ahead_range'),
                                         'max_days_ahead BETWEEN 1 AND 1830')


def downgrade():
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_units_max_days_ahead_range'), type_='check')
        batch_op.drop_column('max_days_ahead')
