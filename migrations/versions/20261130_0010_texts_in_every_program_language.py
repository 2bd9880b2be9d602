"""texts in every program language

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 05:10:00

Migrations run while the previous release is still serving: keep every revision compatible
with the code that came before it, and avoid long table locks (split breaking changes over
two releases).
"""
from alembic import op
import sqlalchemy as sa
import wallet_service.db


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


#: The texts a merchant may give per language, and the card texts made from them: each keeps
#: its column (one text, the first language's) and gains one for the texts per language.
LOCALIZED = (
    ("campaigns", "text_i18n"),
    ("coupons", "title_i18n"),
    ("loyalty_cards", "message_i18n"),
    ("rewards", "name_i18n"),
)


def upgrade() -> None:
    # Nullable columns only: the previous release keeps reading and writing the text columns
    # as before (a row it writes has no texts per language, which reads as one text).
    for table, column in LOCALIZED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column(column, sa.JSON(), nullable=True))


def downgrade() -> None:
    for table, column in reversed(LOCALIZED):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column(column)
