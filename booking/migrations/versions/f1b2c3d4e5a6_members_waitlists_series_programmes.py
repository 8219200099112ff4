"""members, invitations, waitlists, recurring series, no-show release, national campaigns

Issue 19: organisations invite people (invitations); operators keep member lists per space
(space_members); companies wait for full units (waitlist_entries, with offers held as
bookings of status 'offered'); recurring bookings (booking_series, bookings.series_id);
units may release seats not checked in (units.no_show_release_minutes, bookings of status
'released'); municipalities' campaigns are local programmes of a national campaign
(national_campaigns); scheduled jobs are claimed once (job_runs).

Revision ID: f1b2c3d4e5a6
Revises: d7a1c3e5f902
Create Date: 2026-12-06 07:49:43.624948

"""
from alembic import op
import sqlalchemy as sa

import booking.models.base


# revision identifiers, used by Alembic.
revision = 'f1b2c3d4e5a6'
down_revision = 'd7a1c3e5f902'
branch_labels = None
depends_on = None

OLD_STATUSES = ('confirmed', 'checked_in', 'no_show', 'cancelled')
NEW_STATUSES = OLD_STATUSES + ('offered', 'expired', 'released')


def upgrade():
    op.create_table('job_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('started_at', booking.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', booking.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_runs')),
    sa.UniqueConstraint('name', 'key', name=op.f('uq_job_runs_name'))
    )
    op.create_table('national_campaigns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('description_en', sa.Text(), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('core_days', sa.JSON(), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('published', sa.Boolean(), nullable=False),
    sa.Column('created_at', booking.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('length(name) > 0', name=op.f('ck_national_campaigns_name_not_empty')),
    sa.CheckConstraint('starts_on <= ends_on', name=op.f('ck_national_campaigns_dates_ordered')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_national_campaigns')),
    sa.UniqueConstraint('slug', name=op.f('uq_national_campaigns_slug'))
    )
    op.create_table('invitations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('role', sa.Enum('owner', 'staff', name='role', native_enum=False, create_constraint=True, length=10), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('invited_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', booking.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', booking.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('accepted_at', booking.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('accepted_user_id', sa.Integer(), nullable=True),
    sa.Column('revoked_at', booking.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('email = lower(email)', name=op.f('ck_invitations_email_lowercase')),
    sa.ForeignKeyConstraint(['accepted_user_id'], ['users.id'], name=op.f('fk_invitations_accepted_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['invited_by_id'], ['users.id'], name=op.f('fk_invitations_invited_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_invitations_organisation_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invitations')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_invitations_token_hash'))
    )
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invitations_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('space_members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('space_id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.Column('created_at', booking.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('(company_id IS NULL) <> (email IS NULL)', name=op.f('ck_space_members_company_or_person')),
    sa.CheckConstraint('email IS NULL OR email = lower(email)', name=op.f('ck_space_members_email_lowercase')),
    sa.ForeignKeyConstraint(['company_id'], ['organisations.id'], name=op.f('fk_space_members_company_id_organisations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['space_id'], ['spaces.id'], name=op.f('fk_space_members_space_id_spaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_space_members')),
    sa.UniqueConstraint('space_id', 'company_id', name='uq_space_members_company'),
    sa.UniqueConstraint('space_id', 'email', name='uq_space_members_email')
    )
    with op.batch_alter_table('space_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_space_members_company_id'), ['company_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_space_members_space_id'), ['space_id'], unique=False)

    op.create_table('booking_series',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=100), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('weekdays', sa.JSON(), nullable=False),
    sa.Column('first_date', sa.Date(), nullable=False),
    sa.Column('last_date', sa.Date(), nullable=False),
    sa.Column('start_min', sa.Integer(), nullable=True),
    sa.Column('end_min', sa.Integer(), nullable=True),
    sa.Column('seats', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('created_at', booking.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('first_date <= last_date', name=op.f('ck_booking_series_dates_ordered')),
    sa.CheckConstraint('seats >= 1', name=op.f('ck_booking_series_seats_positive')),
    sa.ForeignKeyConstraint(['company_id'], ['organisations.id'], name=op.f('fk_booking_series_company_id_organisations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_booking_series_unit_id_units'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_booking_series_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_booking_series')),
    sa.UniqueConstraint('uid', name=op.f('uq_booking_series_uid'))
    )
    with op.batch_alter_table('booking_series', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_booking_series_company_id'), ['company_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_booking_series_unit_id'), ['unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_booking_series_user_id'), ['user_id'], unique=False)

    op.create_table('waitlist_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('campaign_slot_id', sa.Integer(), nullable=True),
    sa.Column('starts_at', booking.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', booking.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('seats', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('waiting', 'offered', 'booked', 'expired', 'left', name='waitliststatus', native_enum=False, create_constraint=True, length=10), nullable=False),
    sa.Column('offer_booking_id', sa.Integer(), nullable=True),
    sa.Column('offered_at', booking.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('offer_expires_at', booking.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('locale', sa.String(length=5), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('created_at', booking.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', booking.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('seats >= 1', name=op.f('ck_waitlist_entries_seats_positive')),
    sa.CheckConstraint('starts_at < ends_at', name=op.f('ck_waitlist_entries_times_ordered')),
    sa.ForeignKeyConstraint(['campaign_slot_id'], ['campaign_slots.id'], name=op.f('fk_waitlist_entries_campaign_slot_id_campaign_slots'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['company_id'], ['organisations.id'], name=op.f('fk_waitlist_entries_company_id_organisations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['offer_booking_id'], ['bookings.id'], name=op.f('fk_waitlist_entries_offer_booking_id_bookings'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_waitlist_entries_unit_id_units'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_waitlist_entries_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_waitlist_entries'))
    )
    with op.batch_alter_table('waitlist_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_waitlist_entries_campaign_slot_id'), ['campaign_slot_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_waitlist_entries_company_id'), ['company_id'], unique=False)
        batch_op.create_index('ix_waitlist_entries_line', ['unit_id', 'status', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_waitlist_entries_offer_booking_id'), ['offer_booking_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_waitlist_entries_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_bookings_bookingstatus'), type_='check')
        batch_op.create_check_constraint('bookingstatus', sa.column('status').in_(NEW_STATUSES))
        batch_op.add_column(sa.Column('series_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_bookings_series_id'), ['series_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_bookings_series_id_booking_series'), 'booking_series', ['series_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('national_campaign_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_campaigns_national_campaign_id'), ['national_campaign_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_campaigns_national_campaign_id_national_campaigns'), 'national_campaigns', ['national_campaign_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.add_column(sa.Column('no_show_release_minutes', sa.Integer(), nullable=True))
        batch_op.create_check_constraint(
            'no_show_release_positive',
            'no_show_release_minutes IS NULL OR no_show_release_minutes >= 1')



def downgrade():
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_units_no_show_release_positive'), type_='check')
        batch_op.drop_column('no_show_release_minutes')

    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_campaigns_national_campaign_id_national_campaigns'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_campaigns_national_campaign_id'))
        batch_op.drop_column('national_campaign_id')

    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_bookings_series_id_booking_series'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_bookings_series_id'))
        batch_op.drop_column('series_id')
        batch_op.drop_constraint(op.f('ck_bookings_bookingstatus'), type_='check')
        batch_op.create_check_constraint('bookingstatus', sa.column('status').in_(OLD_STATUSES))

    with op.batch_alter_table('waitlist_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_waitlist_entries_user_id'))
        batch_op.drop_index(batch_op.f('ix_waitlist_entries_offer_booking_id'))
        batch_op.drop_index('ix_waitlist_entries_line')
        batch_op.drop_index(batch_op.f('ix_waitlist_entries_company_id'))
        batch_op.drop_index(batch_op.f('ix_waitlist_entries_campaign_slot_id'))

    op.drop_table('waitlist_entries')
    with op.batch_alter_table('booking_series', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_booking_series_user_id'))
        batch_op.drop_index(batch_op.f('ix_booking_series_unit_id'))
        batch_op.drop_index(batch_op.f('ix_booking_series_company_id'))

    op.drop_table('booking_series')
    with op.batch_alter_table('space_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_space_members_space_id'))
        batch_op.drop_index(batch_op.f('ix_space_members_company_id'))

    op.drop_table('space_members')
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invitations_organisation_id'))

    op.drop_table('invitations')
    op.drop_table('national_campaigns')
    op.drop_table('job_runs')
