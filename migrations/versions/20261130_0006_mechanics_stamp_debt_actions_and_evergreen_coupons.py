"""mechanics stamp debt actions and evergreen coupons

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 05:10:00

Migrations run while the previous release is still serving: keep every revision compatible
with the code that came before it, and avoid long table locks (split breaking changes over
two releases).
"""
from alembic import op
import sqlalchemy as sa
import wallet_service.db


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_CARDS = sa.table('loyalty_cards', sa.column('message', sa.Text()),
                  sa.column('message_campaign_id', sa.BigInteger()),
                  sa.column('reminder', sa.Text()))


def upgrade() -> None:
    # New columns are nullable or have a server default: the previous release, which neither
    # reads nor writes them, keeps inserting cards and coupons.
    with op.batch_alter_table('loyalty_cards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stamp_debt', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('reminder', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('reminder_expires_on', sa.Date(), nullable=True))

    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.add_column(sa.Column('evergreen', sa.Boolean(), server_default=sa.false(), nullable=False))

    # Expiry reminders used to be the card's message without a campaign: move them to their
    # own column, where the next daily job works them out again (and takes stale ones off).
    op.execute(_CARDS.update()
               .where(_CARDS.c.message.is_not(None), _CARDS.c.message_campaign_id.is_(None))
               .values(reminder=_CARDS.c.message, message=None))


def downgrade() -> None:
    op.execute(_CARDS.update()
               .where(_CARDS.c.reminder.is_not(None), _CARDS.c.message.is_(None))
               .values(message=_CARDS.c.reminder))

    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.drop_column('evergreen')

    with op.batch_alter_table('loyalty_cards', schema=None) as batch_op:
        batch_op.drop_column('reminder_expires_on')
        batch_op.drop_column('reminder')
        batch_op.drop_column('stamp_debt')
