"""signed passes

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 06:30:00

Migrations run while the previous release is still serving: keep every revision compatible
with the code that came before it, and avoid long table locks (split breaking changes over
two releases).
"""
from alembic import op
import sqlalchemy as sa
import wallet_service.db


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A new table only: the previous release, still serving, neither reads nor writes it.
    op.create_table('signed_passes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('card_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('program_revision', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('download_token', sa.String(length=64), nullable=False),
    sa.Column('issuer', sa.String(length=32), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['card_id'], ['loyalty_cards.id'], name=op.f('fk_signed_passes_card_id_loyalty_cards')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signed_passes')),
    sa.UniqueConstraint('card_id', 'version', 'program_revision', 'download_token', 'issuer', name='uq_signed_passes_card_id_version_revision')
    )


def downgrade() -> None:
    op.drop_table('signed_passes')
