"""units: a room or a house is taken whole (capacity 1)

"Capacity" is how many one-seat bookings may overlap: a meeting room, a private room or a
whole house has 1 (fits_people says how many people it holds). The database now refuses
any other capacity for them (ck_units_whole_unit_capacity); the console refuses a capacity
override above 1 on them (a database check cannot see the unit's kind from the override).

Rows written before are brought in line first: such units get capacity 1 (their loads'
seats_free with it) and their overrides above 1 become 1.

Revision ID: e3a7c5d91b20
Revises: b4d2e8f1a9c7
Create Date: 2026-12-06 00:30:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'e3a7c5d91b20'
down_revision = 'b4d2e8f1a9c7'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("UPDATE units SET capacity = 1 WHERE kind <> 'desk' AND capacity <> 1")
    op.execute("UPDATE capacity_overrides SET capacity = 1 WHERE capacity > 1 AND unit_id IN "
               "(SELECT id FROM units WHERE kind <> 'desk')")
    op.execute("UPDATE unit_loads SET seats_free = 1 - seats WHERE unit_id IN "
               "(SELECT id FROM units WHERE kind <> 'desk')")
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.create_check_constraint(op.f('ck_units_whole_unit_capacity'),
                                         "kind = 'desk' OR capacity = 1")


def downgrade():
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_units_whole_unit_capacity'), type_='check')
