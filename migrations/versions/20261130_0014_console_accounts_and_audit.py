"""console accounts and audit

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 07:30:00

Migrations run while the previous release is still serving: keep every revision compatible
with the code that came before it, and avoid long table locks (split breaking changes over
two releases).
"""
from alembic import op
import sqlalchemy as sa
import wallet_service.db


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # New tables only: the previous release, still serving, neither reads nor writes them.
    op.create_table('audit_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('actor_kind', sa.String(length=10), nullable=False),
    sa.Column('actor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('actor_label', sa.String(length=320), nullable=False),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('target', sa.String(length=200), nullable=True),
    sa.Column('changes', sa.JSON(), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('created_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_audit_entries_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entries'))
    )
    op.create_index('ix_audit_entries_merchant_id_id', 'audit_entries', ['merchant_id', 'id'], unique=False)
    op.create_table('console_users',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('locale', sa.String(length=5), server_default='ru', nullable=False),
    sa.Column('failed_sign_ins', sa.Integer(), server_default='0', nullable=False),
    sa.Column('locked_until', wallet_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('session_epoch', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('disabled_at', wallet_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_console_users_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_users')),
    sa.UniqueConstraint('email', name=op.f('uq_console_users_email'))
    )
    op.create_index(op.f('ix_console_users_merchant_id'), 'console_users', ['merchant_id'], unique=False)
    op.create_table('console_tokens',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('purpose', sa.String(length=10), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('expires_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', wallet_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_console_tokens_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['user_id'], ['console_users.id'], name=op.f('fk_console_tokens_user_id_console_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_console_tokens_token_hash'))
    )
    op.create_index(op.f('ix_console_tokens_merchant_id'), 'console_tokens', ['merchant_id'], unique=False)
    op.create_index(op.f('ix_console_tokens_user_id'), 'console_tokens', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_console_tokens_user_id'), table_name='console_tokens')
    op.drop_index(op.f('ix_console_tokens_merchant_id'), table_name='console_tokens')
    op.drop_table('console_tokens')
    op.drop_index(op.f('ix_console_users_merchant_id'), table_name='console_users')
    op.drop_table('console_users')
    op.drop_index('ix_audit_entries_merchant_id_id', table_name='audit_entries')
    op.drop_table('audit_entries')
