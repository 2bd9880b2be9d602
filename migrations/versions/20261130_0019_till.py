"""till

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30 07:30:00

Migrations run while the previous release is still serving: keep every revision compatible
with the code that came before it, and avoid long table locks (split breaking changes over
two releases).
"""
from alembic import op
import sqlalchemy as sa
import wallet_service.db


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    # Nullable columns and new tables only: the previous release, still serving, writes
    # ledger rows without them and never reads the new tables.
    op.add_column('ledger_transactions', sa.Column('api_key_id', BIG_ID, nullable=True))
    op.add_column('ledger_transactions', sa.Column('staff_user_id', BIG_ID, nullable=True))
    op.add_column('ledger_transactions', sa.Column('location_id', BIG_ID, nullable=True))
    op.create_index('ix_ledger_transactions_staff_user_id_id', 'ledger_transactions',
                    ['staff_user_id', 'id'], unique=False)
    op.create_table('till_devices',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('merchant_id', BIG_ID, nullable=False),
    sa.Column('location_id', BIG_ID, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('registered_by', BIG_ID, nullable=True),
    sa.Column('created_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', wallet_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', wallet_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], name=op.f('fk_till_devices_location_id_locations')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_till_devices_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_till_devices')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_till_devices_token_hash'))
    )
    op.create_index(op.f('ix_till_devices_merchant_id'), 'till_devices', ['merchant_id'], unique=False)
    op.create_table('staff_pins',
    sa.Column('user_id', BIG_ID, nullable=False),
    sa.Column('merchant_id', BIG_ID, nullable=False),
    sa.Column('pin_hash', sa.String(length=200), nullable=False),
    sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('locked_until', wallet_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_staff_pins_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['user_id'], ['console_users.id'], name=op.f('fk_staff_pins_user_id_console_users')),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_staff_pins'))
    )
    op.create_index(op.f('ix_staff_pins_merchant_id'), 'staff_pins', ['merchant_id'], unique=False)
    op.create_table('till_limits',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('merchant_id', BIG_ID, nullable=False),
    sa.Column('user_id', BIG_ID, nullable=True),
    sa.Column('points_per_transaction', sa.BigInteger(), nullable=True),
    sa.Column('stamps_per_transaction', sa.Integer(), nullable=True),
    sa.Column('points_per_customer_day', sa.BigInteger(), nullable=True),
    sa.Column('stamps_per_customer_day', sa.Integer(), nullable=True),
    sa.Column('points_per_staff_day', sa.BigInteger(), nullable=True),
    sa.Column('stamps_per_staff_day', sa.Integer(), nullable=True),
    sa.Column('updated_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_till_limits_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['user_id'], ['console_users.id'], name=op.f('fk_till_limits_user_id_console_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_till_limits')),
    sa.UniqueConstraint('merchant_id', 'user_id', name=op.f('uq_till_limits_merchant_id_user_id'))
    )
    op.create_table('till_events',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('merchant_id', BIG_ID, nullable=False),
    sa.Column('user_id', BIG_ID, nullable=True),
    sa.Column('location_id', BIG_ID, nullable=True),
    sa.Column('device_id', BIG_ID, nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('card_id', BIG_ID, nullable=True),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.Column('created_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_till_events_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_till_events'))
    )
    op.create_index('ix_till_events_merchant_id_created_at', 'till_events',
                    ['merchant_id', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_till_events_merchant_id_created_at', table_name='till_events')
    op.drop_table('till_events')
    op.drop_table('till_limits')
    op.drop_index(op.f('ix_staff_pins_merchant_id'), table_name='staff_pins')
    op.drop_table('staff_pins')
    op.drop_index(op.f('ix_till_devices_merchant_id'), table_name='till_devices')
    op.drop_table('till_devices')
    op.drop_index('ix_ledger_transactions_staff_user_id_id', table_name='ledger_transactions')
    with op.batch_alter_table('ledger_transactions') as batch:
        batch.drop_column('location_id')
        batch.drop_column('staff_user_id')
        batch.drop_column('api_key_id')
