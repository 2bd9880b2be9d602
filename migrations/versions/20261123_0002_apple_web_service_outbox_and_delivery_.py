"""apple web service, outbox and delivery jobs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 12:37:12.893549

Migrations run while the previous release is still serving: keep every revision compatible
with the code that came before it, and avoid long table locks (split breaking changes over
two releases).
"""
from alembic import op
import sqlalchemy as sa
import wallet_service.db


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('delivery_jobs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('target_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('available_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lease_until', wallet_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.Column('created_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_jobs'))
    )
    with op.batch_alter_table('delivery_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_jobs_claim', ['channel', 'status', 'available_at'], unique=False)

    op.create_table('device_logs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('remote_addr', sa.String(length=64), nullable=True),
    sa.Column('created_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_device_logs'))
    )
    with op.batch_alter_table('device_logs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_device_logs_created_at'), ['created_at'], unique=False)

    op.create_table('devices',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('device_library_identifier', sa.String(length=128), nullable=False),
    sa.Column('push_token', sa.String(length=256), nullable=False),
    sa.Column('created_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_devices')),
    sa.UniqueConstraint('device_library_identifier', name=op.f('uq_devices_device_library_identifier'))
    )
    op.create_table('program_images',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('program_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('filename', sa.String(length=40), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['loyalty_programs.id'], name=op.f('fk_program_images_program_id_loyalty_programs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_program_images')),
    sa.UniqueConstraint('program_id', 'filename', name=op.f('uq_program_images_program_id_filename'))
    )
    op.create_table('push_attempts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('device_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token_prefix', sa.String(length=16), nullable=False),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=100), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('apns_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_push_attempts'))
    )
    with op.batch_alter_table('push_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_push_attempts_device_id'), ['device_id'], unique=False)

    counter = op.create_table('update_counter',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_update_counter'))
    )
    op.bulk_insert(counter, [{"id": 1, "value": 0}])
    op.create_table('card_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('card_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['card_id'], ['loyalty_cards.id'], name=op.f('fk_card_changes_card_id_loyalty_cards')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_card_changes'))
    )
    with op.batch_alter_table('card_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_card_changes_card_id'), ['card_id'], unique=False)

    op.create_table('registrations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('device_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('card_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['card_id'], ['loyalty_cards.id'], name=op.f('fk_registrations_card_id_loyalty_cards')),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_registrations_device_id_devices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registrations')),
    sa.UniqueConstraint('device_id', 'card_id', name=op.f('uq_registrations_device_id_card_id'))
    )
    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_registrations_card_id'), ['card_id'], unique=False)

    with op.batch_alter_table('loyalty_cards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('update_seq', sa.BigInteger(), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column('last_modified', wallet_service.db.UTCDateTime(timezone=True),
                                      nullable=False, server_default='1970-01-01 00:00:00'))
        batch_op.create_index(batch_op.f('ix_loyalty_cards_update_seq'), ['update_seq'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('loyalty_cards', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loyalty_cards_update_seq'))
        batch_op.drop_column('last_modified')
        batch_op.drop_column('update_seq')

    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_registrations_card_id'))

    op.drop_table('registrations')
    with op.batch_alter_table('card_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_card_changes_card_id'))

    op.drop_table('card_changes')
    op.drop_table('update_counter')
    with op.batch_alter_table('push_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_push_attempts_device_id'))

    op.drop_table('push_attempts')
    op.drop_table('program_images')
    op.drop_table('devices')
    with op.batch_alter_table('device_logs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_device_logs_created_at'))

    op.drop_table('device_logs')
    with op.batch_alter_table('delivery_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_jobs_claim')

    op.drop_table('delivery_jobs')
