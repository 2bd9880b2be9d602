"""card update tags apart from the cards

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-30 13:00:00

Migrations run while the previous release is still serving: keep every revision compatible
with the code that came before it, and avoid long table locks (split breaking changes over
two releases).
"""
import sqlalchemy as sa
from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Update tags move to a table of their own, written by the sequencer only: it no longer
    # locks cards that requests are changing, and a card's content changes without touching
    # an indexed column. ``loyalty_cards.update_seq`` stays, no longer written: the
    # previous release still reads and writes it while both serve, and this release reads
    # it as a floor (the greater of the two is a card's tag); a later release drops it.
    # No foreign key to the card: checking it would wait for a request that holds the card.
    op.create_table(
        'card_update_tags',
        sa.Column('card_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=False, nullable=False),
        sa.Column('update_seq', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('card_id', name=op.f('pk_card_update_tags')),
    )
    with op.batch_alter_table('card_update_tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_card_update_tags_update_seq'), ['update_seq'],
                              unique=False)
    op.execute("INSERT INTO card_update_tags (card_id, update_seq) "
               "SELECT id, update_seq FROM loyalty_cards WHERE update_seq > 0")
    if op.get_bind().dialect.name == 'postgresql':
        # Room on each page for the next version of a row: a card changed by every purchase
        # is updated in place on its page (HOT) instead of moving and growing every index.
        # New pages get it at once; pages written before, as they are rewritten.
        op.execute("ALTER TABLE loyalty_cards SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("ALTER TABLE loyalty_cards RESET (fillfactor)")
    op.execute("UPDATE loyalty_cards SET update_seq = (SELECT t.update_seq FROM "
               "card_update_tags t WHERE t.card_id = loyalty_cards.id) "
               "WHERE id IN (SELECT card_id FROM card_update_tags)")
    with op.batch_alter_table('card_update_tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_card_update_tags_update_seq'))
    op.drop_table('card_update_tags')
