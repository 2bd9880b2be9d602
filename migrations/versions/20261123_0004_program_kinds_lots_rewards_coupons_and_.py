"""program kinds, lots, rewards, coupons and campaigns

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 13:06:29.772337

Migrations run while the previous release is still serving: keep every revision compatible
with the code that came before it, and avoid long table locks (split breaking changes over
two releases).
"""
from alembic import op
import sqlalchemy as sa
import wallet_service.db


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaigns',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('program_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('segment', sa.JSON(), nullable=False),
    sa.Column('reached', sa.Integer(), nullable=False),
    sa.Column('created_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['loyalty_programs.id'], name=op.f('fk_campaigns_program_id_loyalty_programs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns'))
    )
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaigns_program_id'), ['program_id'], unique=False)

    op.create_table('coupons',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('program_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=1000), nullable=True),
    sa.Column('segment', sa.JSON(), nullable=False),
    sa.Column('valid_from', wallet_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('valid_until', wallet_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['loyalty_programs.id'], name=op.f('fk_coupons_program_id_loyalty_programs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupons'))
    )
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coupons_program_id'), ['program_id'], unique=False)

    op.create_table('rewards',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('program_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.String(length=1000), nullable=True),
    sa.Column('cost_points', sa.BigInteger(), nullable=True),
    sa.Column('cost_stamps', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['loyalty_programs.id'], name=op.f('fk_rewards_program_id_loyalty_programs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rewards'))
    )
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rewards_program_id'), ['program_id'], unique=False)

    op.create_table('coupon_grants',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('coupon_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('card_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('used_at', wallet_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['card_id'], ['loyalty_cards.id'], name=op.f('fk_coupon_grants_card_id_loyalty_cards')),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons.id'], name=op.f('fk_coupon_grants_coupon_id_coupons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupon_grants')),
    sa.UniqueConstraint('coupon_id', 'card_id', name=op.f('uq_coupon_grants_coupon_id_card_id'))
    )
    with op.batch_alter_table('coupon_grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coupon_grants_card_id'), ['card_id'], unique=False)

    op.create_table('point_lots',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('card_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('transaction_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('remaining', sa.BigInteger(), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=False),
    sa.Column('created_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['card_id'], ['loyalty_cards.id'], name=op.f('fk_point_lots_card_id_loyalty_cards')),
    sa.ForeignKeyConstraint(['transaction_id'], ['ledger_transactions.id'], name=op.f('fk_point_lots_transaction_id_ledger_transactions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_point_lots'))
    )
    with op.batch_alter_table('point_lots', schema=None) as batch_op:
        batch_op.create_index('ix_point_lots_card_id_expires_on', ['card_id', 'expires_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_point_lots_expires_on'), ['expires_on'], unique=False)

    with op.batch_alter_table('ledger_transactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stamps', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('reference_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.add_column(sa.Column('details', sa.JSON(), nullable=True))

    with op.batch_alter_table('loyalty_cards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stamps', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('visits', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('last_visit_at', wallet_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('referral_code', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('referred_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.add_column(sa.Column('message', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('message_campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_loyalty_cards_referral_code'), ['referral_code'])
        batch_op.create_foreign_key(batch_op.f('fk_loyalty_cards_referred_by_id_loyalty_cards'), 'loyalty_cards', ['referred_by_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('loyalty_cards', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_loyalty_cards_referred_by_id_loyalty_cards'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_loyalty_cards_referral_code'), type_='unique')
        batch_op.drop_column('message_campaign_id')
        batch_op.drop_column('message')
        batch_op.drop_column('referred_by_id')
        batch_op.drop_column('referral_code')
        batch_op.drop_column('last_visit_at')
        batch_op.drop_column('visits')
        batch_op.drop_column('stamps')

    with op.batch_alter_table('ledger_transactions', schema=None) as batch_op:
        batch_op.drop_column('details')
        batch_op.drop_column('reference_id')
        batch_op.drop_column('stamps')

    with op.batch_alter_table('point_lots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_point_lots_expires_on'))
        batch_op.drop_index('ix_point_lots_card_id_expires_on')

    op.drop_table('point_lots')
    with op.batch_alter_table('coupon_grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coupon_grants_card_id'))

    op.drop_table('coupon_grants')
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rewards_program_id'))

    op.drop_table('rewards')
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coupons_program_id'))

    op.drop_table('coupons')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaigns_program_id'))

    op.drop_table('campaigns')
