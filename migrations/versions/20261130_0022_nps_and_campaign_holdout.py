"""nps and campaign holdout

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-30 07:30:00

Migrations run while the previous release is still serving: keep every revision compatible
with the code that came before it, and avoid long table locks (split breaking changes over
two releases).
"""
from alembic import op
import sqlalchemy as sa
import wallet_service.db


revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    # New nullable or defaulted columns and new tables: the previous release, still
    # serving, neither reads them nor is stopped by them.
    with op.batch_alter_table('campaigns') as batch:
        batch.add_column(sa.Column('holdout_percent', sa.Integer(), server_default='0',
                                   nullable=False))
        batch.add_column(sa.Column('holdout_seed', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('held_out', sa.Integer(), server_default='0',
                                   nullable=False))
    with op.batch_alter_table('loyalty_programs') as batch:
        batch.add_column(sa.Column('survey', sa.JSON(), nullable=True))
    op.create_table('campaign_recipients',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('campaign_id', _ID, nullable=False),
    sa.Column('card_id', _ID, nullable=False),
    sa.Column('group', sa.String(length=10), nullable=False),
    sa.Column('draw', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_recipients_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['card_id'], ['loyalty_cards.id'], name=op.f('fk_campaign_recipients_card_id_loyalty_cards')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_recipients')),
    sa.UniqueConstraint('campaign_id', 'card_id', name=op.f('uq_campaign_recipients_campaign_id_card_id'))
    )
    op.create_index(op.f('ix_campaign_recipients_card_id'), 'campaign_recipients', ['card_id'], unique=False)
    op.create_table('nps_answers',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('merchant_id', _ID, nullable=False),
    sa.Column('program_id', _ID, nullable=False),
    sa.Column('card_id', _ID, nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('answered_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['card_id'], ['loyalty_cards.id'], name=op.f('fk_nps_answers_card_id_loyalty_cards')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_nps_answers_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['program_id'], ['loyalty_programs.id'], name=op.f('fk_nps_answers_program_id_loyalty_programs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_nps_answers'))
    )
    op.create_index('ix_nps_answers_card_id_answered_at', 'nps_answers', ['card_id', 'answered_at'], unique=False)
    op.create_index('ix_nps_answers_merchant_id_answered_at', 'nps_answers', ['merchant_id', 'answered_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_nps_answers_merchant_id_answered_at', table_name='nps_answers')
    op.drop_index('ix_nps_answers_card_id_answered_at', table_name='nps_answers')
    op.drop_table('nps_answers')
    op.drop_index(op.f('ix_campaign_recipients_card_id'), table_name='campaign_recipients')
    op.drop_table('campaign_recipients')
    with op.batch_alter_table('loyalty_programs') as batch:
        batch.drop_column('survey')
    with op.batch_alter_table('campaigns') as batch:
        batch.drop_column('held_out')
        batch.drop_column('holdout_seed')
        batch.drop_column('holdout_percent')
