"""api key scopes

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 05:50:00

Migrations run while the previous release is still serving: keep every revision compatible
with the code that came before it, and avoid long table locks (split breaking changes over
two releases).
"""
from alembic import op
import sqlalchemy as sa
import wallet_service.db


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every key could do everything before scopes existed, so existing keys keep that
    # (`admin`). The server default stays: the previous release, still serving while this
    # runs, creates keys without naming a scope, and they are its all-powerful keys too. On
    # PostgreSQL 11+ a column added with a constant default is a catalog change (no rewrite).
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scope', sa.String(length=20), server_default='admin',
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('scope')
