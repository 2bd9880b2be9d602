"""fan out: delivery jobs by target

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-30 11:00:00

Migrations run while the previous release is still serving: keep every revision compatible
with the code that came before it, and avoid long table locks (split breaking changes over
two releases).
"""
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Sequencing asks, for every device of a batch, whether it has a job waiting or in
    # flight: an index lookup per device instead of a scan of a large fan-out's jobs, whatever
    # the planner's statistics say. An index only: the previous release is not affected, and
    # the table is a queue, small outside a fan-out, so building it is quick.
    with op.batch_alter_table('delivery_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_jobs_target', ['channel', 'target_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('delivery_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_jobs_target')
