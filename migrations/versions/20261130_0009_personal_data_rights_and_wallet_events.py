"""personal data rights and wallet events

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 05:10:00

Migrations run while the previous release is still serving: keep every revision compatible
with the code that came before it, and avoid long table locks (split breaking changes over
two releases).
"""
from alembic import op
import sqlalchemy as sa
import wallet_service.db


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # New columns are nullable or have a server default, and phone only loses NOT NULL: the
    # previous release reads and writes members as before.
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.alter_column('phone', existing_type=sa.String(length=20), nullable=True)
        batch_op.add_column(sa.Column('consent_withdrawn_at', wallet_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('marketing_consent', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('marketing_consent_text', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('marketing_consent_at', wallet_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('marketing_consent_withdrawn_at', wallet_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('erased_at', wallet_service.db.UTCDateTime(timezone=True), nullable=True))

    op.create_table('wallet_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('card_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('wallet', sa.String(length=10), nullable=False),
    sa.Column('event', sa.String(length=10), nullable=False),
    sa.Column('cause', sa.String(length=20), nullable=False),
    sa.Column('occurred_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['card_id'], ['loyalty_cards.id'], name=op.f('fk_wallet_events_card_id_loyalty_cards')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_wallet_events_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wallet_events'))
    )
    with op.batch_alter_table('wallet_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wallet_events_card_id'), ['card_id'], unique=False)
        batch_op.create_index('ix_wallet_events_merchant_id_id', ['merchant_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_wallet_events_occurred_at'), ['occurred_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('wallet_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wallet_events_occurred_at'))
        batch_op.drop_index('ix_wallet_events_merchant_id_id')
        batch_op.drop_index(batch_op.f('ix_wallet_events_card_id'))

    op.drop_table('wallet_events')
    # NOT NULL needs a phone back for erased members: a placeholder, unique per member and
    # never a valid number, so no personal data comes back.
    op.execute("UPDATE members SET phone = 'erased-' || id WHERE phone IS NULL")
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_column('erased_at')
        batch_op.drop_column('marketing_consent_withdrawn_at')
        batch_op.drop_column('marketing_consent_at')
        batch_op.drop_column('marketing_consent_text')
        batch_op.drop_column('marketing_consent')
        batch_op.drop_column('consent_withdrawn_at')
        batch_op.alter_column('phone', existing_type=sa.String(length=20), nullable=False)
