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


def downgrade() -> None:
    op.drop_index('ix_audit_entries_merchant_id_id', table_name='audit_entries')
    op.drop_table('audit_entries')
