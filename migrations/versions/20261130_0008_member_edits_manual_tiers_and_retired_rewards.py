"""member edits manual tiers and retired rewards

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 05:10:00

Migrations run while the previous release is still serving: keep every revision compatible
with the code that came before it, and avoid long table locks (split breaking changes over
two releases).
"""
from alembic import op
import sqlalchemy as sa
import wallet_service.db


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns only: the previous release neither reads nor writes them.
    with op.batch_alter_table('loyalty_cards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('manual_tier', sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column('manual_tier_until', sa.Date(), nullable=True))

    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retired_at', wallet_service.db.UTCDateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.drop_column('retired_at')

    with op.batch_alter_table('loyalty_cards', schema=None) as batch_op:
        batch_op.drop_column('manual_tier_until')
        batch_op.drop_column('manual_tier')
