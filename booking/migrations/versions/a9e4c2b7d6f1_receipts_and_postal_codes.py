"""receipts and postal codes

Issue 20: money documents issued for bookings (receipts, qualified invoices, credit notes,
usage certificates) numbered per issuer without reuse (receipt_counters); each issuer's
invoice registration number; postal codes of organisations and spaces.

Revision ID: a9e4c2b7d6f1
Revises: f1b2c3d4e5a6
Create Date: 2026-12-06 09:06:31.367377

"""
from alembic import op
import sqlalchemy as sa

import booking.models.base


# revision identifiers, used by Alembic.
revision = 'a9e4c2b7d6f1'
down_revision = 'f1b2c3d4e5a6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('receipt_counters',
    sa.Column('issuer_id', sa.Integer(), nullable=False),
    sa.Column('last_number', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['issuer_id'], ['organisations.id'], name=op.f('fk_receipt_counters_issuer_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('issuer_id', name=op.f('pk_receipt_counters'))
    )
    op.create_table('receipts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issuer_id', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.Enum('receipt', 'invoice', 'credit_note', 'usage_certificate', name='documentkind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('booking_id', sa.Integer(), nullable=True),
    sa.Column('recipient_id', sa.Integer(), nullable=True),
    sa.Column('credit_of_id', sa.Integer(), nullable=True),
    sa.Column('issued_at', booking.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.CheckConstraint('sequence >= 1', name=op.f('ck_receipts_sequence_positive')),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], name=op.f('fk_receipts_booking_id_bookings'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['credit_of_id'], ['receipts.id'], name=op.f('fk_receipts_credit_of_id_receipts'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['issuer_id'], ['organisations.id'], name=op.f('fk_receipts_issuer_id_organisations'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['recipient_id'], ['organisations.id'], name=op.f('fk_receipts_recipient_id_organisations'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_receipts')),
    sa.UniqueConstraint('issuer_id', 'sequence', name='uq_receipts_issuer_sequence')
    )
    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_receipts_booking_id'), ['booking_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_receipts_credit_of_id'), ['credit_of_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_receipts_issuer_id'), ['issuer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_receipts_recipient_id'), ['recipient_id'], unique=False)

    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('invoice_registration_number', sa.String(length=14), nullable=True))
        batch_op.add_column(sa.Column('postal_code', sa.String(length=8), server_default='', nullable=False))

    with op.batch_alter_table('spaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('postal_code', sa.String(length=8), server_default='', nullable=False))



def downgrade():
    with op.batch_alter_table('spaces', schema=None) as batch_op:
        batch_op.drop_column('postal_code')

    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.drop_column('postal_code')
        batch_op.drop_column('invoice_registration_number')

    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_receipts_recipient_id'))
        batch_op.drop_index(batch_op.f('ix_receipts_issuer_id'))
        batch_op.drop_index(batch_op.f('ix_receipts_credit_of_id'))
        batch_op.drop_index(batch_op.f('ix_receipts_booking_id'))

    op.drop_table('receipts')
    op.drop_table('receipt_counters')
