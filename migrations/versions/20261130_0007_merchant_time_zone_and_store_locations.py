"""merchant time zone and store locations

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 05:10:00

Migrations run while the previous release is still serving: keep every revision compatible
with the code that came before it, and avoid long table locks (split breaking changes over
two releases).
"""
import os
import zoneinfo

from alembic import op
import sqlalchemy as sa
import wallet_service.db


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def _default_time_zone() -> str:
    """The zone existing merchants get: the deployment's ``WALLET_DEFAULT_TIME_ZONE`` (the
    same environment the service runs with), else the setting's own default. Frozen here
    rather than imported, so the revision does what it did whatever the code becomes."""
    name = os.environ.get('WALLET_DEFAULT_TIME_ZONE', '')
    return name if name in zoneinfo.available_timezones() else 'Europe/Moscow'


def upgrade() -> None:
    # The time zone has a server default: existing merchants, and those the previous release
    # creates while it still serves, get the deployment's default zone. The new release
    # always writes it.
    with op.batch_alter_table('merchants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('time_zone', sa.String(length=64), server_default=_default_time_zone(), nullable=False))
        batch_op.add_column(sa.Column('daily_done_on', sa.Date(), nullable=True))

    op.create_table('locations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=500), nullable=False),
    sa.Column('latitude', sa.Float(), nullable=False),
    sa.Column('longitude', sa.Float(), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=True),
    sa.Column('relevant_text', sa.String(length=200), nullable=True),
    sa.Column('created_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', wallet_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_locations_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_locations'))
    )
    with op.batch_alter_table('locations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_locations_merchant_id'), ['merchant_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('locations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_locations_merchant_id'))

    op.drop_table('locations')
    with op.batch_alter_table('merchants', schema=None) as batch_op:
        batch_op.drop_column('daily_done_on')
        batch_op.drop_column('time_zone')
