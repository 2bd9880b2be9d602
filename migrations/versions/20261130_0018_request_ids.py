"""request ids

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30 07:30:00

Migrations run while the previous release is still serving: keep every revision compatible
with the code that came before it, and avoid long table locks (split breaking changes over
two releases).

Two nullable columns (no rewrite, no lock beyond the catalog's): the request that made a card
change, and the changes a delivery job carries, so that one id follows a purchase from the
request to the push in the logs.
"""
from alembic import op
import sqlalchemy as sa
import wallet_service.db


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('card_changes') as batch:
        batch.add_column(sa.Column('request_id', sa.String(length=64), nullable=True))
    with op.batch_alter_table('delivery_jobs') as batch:
        batch.add_column(sa.Column('changes', sa.String(length=1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('delivery_jobs') as batch:
        batch.drop_column('changes')
    with op.batch_alter_table('card_changes') as batch:
        batch.drop_column('request_id')
