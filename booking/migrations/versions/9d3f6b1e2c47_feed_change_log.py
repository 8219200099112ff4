"""feed_changes: the calendar feeds' change log, written by triggers on bookings

On PostgreSQL a feed's validator is read from this log (the sum of its owner's weights and
the row versions of the units and spaces it names) instead of from the row versions of
every booking in the feed. The log is filled here with a row per owner and unit of every
booking there is, so that feeds read at once see the units their bookings are on. The
triggers are written out as booking.models.bookings.FEED_CHANGE_TRIGGERS had them (a
migration keeps its own). SQLite: the table only (its feeds hash their rows).

Revision ID: 9d3f6b1e2c47
Revises: 4b8d2e6f1a93
Create Date: 2026-12-07 02:45:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9d3f6b1e2c47'
down_revision = '4b8d2e6f1a93'
branch_labels = None
depends_on = None

def noting(bookings: str) -> str:
    """The INSERT of the log's rows for the owners and units of these bookings' rows."""
    return f"""INSERT INTO feed_changes (owner_kind, owner_id, unit_id)
    SELECT DISTINCT o.kind, o.id, b.unit_id FROM {bookings} b JOIN units u ON u.id = b.unit_id
    CROSS JOIN LATERAL (VALUES ('User', b.user_id), ('Organisation', b.company_id),
                               ('Space', u.space_id)) AS o (kind, id)
    WHERE o.id IS NOT NULL;"""


TRIGGERS = f"""
CREATE OR REPLACE FUNCTION note_feed_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {noting("changed_bookings")}
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION note_feed_changes_of_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {noting("(SELECT user_id, company_id, unit_id FROM old_bookings "
            "UNION SELECT user_id, company_id, unit_id FROM changed_bookings)")}
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION note_unit_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO feed_changes (owner_kind, owner_id, unit_id) VALUES ('Space', NEW.space_id, NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER feed_changes_inserted AFTER INSERT ON bookings
    REFERENCING NEW TABLE AS changed_bookings
    FOR EACH STATEMENT EXECUTE FUNCTION note_feed_changes();
CREATE TRIGGER feed_changes_updated AFTER UPDATE ON bookings
    REFERENCING OLD TABLE AS old_bookings NEW TABLE AS changed_bookings
    FOR EACH STATEMENT EXECUTE FUNCTION note_feed_changes_of_update();
CREATE TRIGGER feed_changes_deleted AFTER DELETE ON bookings
    REFERENCING OLD TABLE AS changed_bookings
    FOR EACH STATEMENT EXECUTE FUNCTION note_feed_changes();
CREATE TRIGGER feed_changes_unit_moved AFTER UPDATE OF space_id ON units
    FOR EACH ROW WHEN (OLD.space_id IS DISTINCT FROM NEW.space_id)
    EXECUTE FUNCTION note_unit_moved();
"""

FILL = """
INSERT INTO feed_changes (owner_kind, owner_id, unit_id, weight)
SELECT o.kind, o.id, b.unit_id, count(*)
FROM bookings b JOIN units u ON u.id = b.unit_id
CROSS JOIN LATERAL (VALUES ('User', b.user_id), ('Organisation', b.company_id),
                           ('Space', u.space_id)) AS o (kind, id)
WHERE o.id IS NOT NULL
GROUP BY o.kind, o.id, b.unit_id
"""


def upgrade():
    op.create_table('feed_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('owner_kind', sa.String(length=12), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('weight', sa.Integer(), server_default='1', nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feed_changes'))
    )
    with op.batch_alter_table('feed_changes', schema=None) as batch_op:
        batch_op.create_index('ix_feed_changes_owner',
                              ['owner_kind', 'owner_id', 'unit_id', 'weight'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(TRIGGERS)
        op.execute(FILL)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for trigger in ('inserted', 'updated', 'deleted'):
            op.execute(f'DROP TRIGGER IF EXISTS feed_changes_{trigger} ON bookings')
        op.execute('DROP TRIGGER IF EXISTS feed_changes_unit_moved ON units')
        op.execute('DROP FUNCTION IF EXISTS note_feed_changes()')
        op.execute('DROP FUNCTION IF EXISTS note_feed_changes_of_update()')
        op.execute('DROP FUNCTION IF EXISTS note_unit_moved()')
    with op.batch_alter_table('feed_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_feed_changes_owner')
    op.drop_table('feed_changes')
