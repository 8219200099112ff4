"""units and unit_loads: the map square (area) search reads a day's loads by

A unit's `area` is the map square of its space when the unit was made (a quarter of a
degree each way; -1 without coordinates, and for rows SQL inserts without one), kept for
good; its unit_loads rows carry it, and the day index of the loads is by day, then square:
a search near a place reads the loads of its squares, not the whole country's day. Filled
here from each space's coordinates now, by the formula of booking.models.map_area
(written out: a migration keeps its own).

Revision ID: 4b8d2e6f1a93
Revises: c3f7a9e1d5b2
Create Date: 2026-12-06 22:30:00.000000

"""
import math

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4b8d2e6f1a93'
down_revision = 'c3f7a9e1d5b2'
branch_labels = None
depends_on = None

LOADS_INCLUDE = ['unit_id', 'start_min', 'end_min', 'seats']


def _area(lat, lon):
    if lat is None or lon is None:
        return -1
    return (math.floor(lat * 4) + 360) * 1440 + math.floor(lon * 4) + 720


def upgrade():
    for table in ('units', 'unit_loads'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('area', sa.Integer(), server_default='-1',
                                          nullable=False))
    connection = op.get_bind()
    squares = {}
    for space_id, lat, lon in connection.execute(sa.text("SELECT id, lat, lon FROM spaces")):
        squares.setdefault(_area(lat, lon), []).append(space_id)
    for area, space_ids in squares.items():
        connection.execute(
            sa.text("UPDATE units SET area = :area WHERE space_id IN :ids")
            .bindparams(sa.bindparam('ids', expanding=True)),
            {"area": area, "ids": space_ids})
    connection.execute(sa.text(
        "UPDATE unit_loads SET area = (SELECT area FROM units WHERE units.id = unit_loads.unit_id)"))
    with op.batch_alter_table('unit_loads', schema=None) as batch_op:
        batch_op.drop_index('ix_unit_loads_day', postgresql_include=LOADS_INCLUDE)
        batch_op.create_index('ix_unit_loads_day_area', ['day', 'area', 'seats_free'],
                              unique=False, postgresql_include=LOADS_INCLUDE)


def downgrade():
    with op.batch_alter_table('unit_loads', schema=None) as batch_op:
        batch_op.drop_index('ix_unit_loads_day_area', postgresql_include=LOADS_INCLUDE)
        batch_op.create_index('ix_unit_loads_day', ['day', 'seats_free'], unique=False,
                              postgresql_include=LOADS_INCLUDE)
        batch_op.drop_column('area')
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_column('area')
