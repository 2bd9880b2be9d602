"""console setup

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30 07:30:00

Migrations run while the previous release is still serving: keep every revision compatible
with the code that came before it, and avoid long table locks (split breaking changes over
two releases).
"""
from alembic import op
import sqlalchemy as sa
import wallet_service.db


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    # A new table only: the previous release, still serving, never reads it.
    op.create_table('scheduled_campaigns',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('merchant_id', BIG_ID, nullable=False),
    sa.Column('program_id', BIG_ID, nullable=False),
    sa.Column('text', sa.JSON(), nullable=False),
    sa.Column('segment', sa.JSON(), nullable=False),
    sa.Column('holdout_percent', sa.Integer(), server_default='0', nullable=False),
    sa.Column('send_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('local_time', sa.String(length=16), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('campaign_id', BIG_ID, nullable=True),
    sa.Column('created_by', BIG_ID, nullable=True),
    sa.Column('created_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_scheduled_campaigns_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_scheduled_campaigns_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['program_id'], ['loyalty_programs.id'], name=op.f('fk_scheduled_campaigns_program_id_loyalty_programs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scheduled_campaigns'))
    )
    op.create_index('ix_scheduled_campaigns_status_send_at', 'scheduled_campaigns',
                    ['status', 'send_at'], unique=False)
    op.create_index(op.f('ix_scheduled_campaigns_merchant_id'), 'scheduled_campaigns',
                    ['merchant_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_scheduled_campaigns_merchant_id'), table_name='scheduled_campaigns')
    op.drop_index('ix_scheduled_campaigns_status_send_at', table_name='scheduled_campaigns')
    op.drop_table('scheduled_campaigns')
