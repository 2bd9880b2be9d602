"""analytics rollups

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 07:30:00

Migrations run while the previous release is still serving: keep every revision compatible
with the code that came before it, and avoid long table locks (split breaking changes over
two releases).

New tables only, and three indexes the worker's rollup refresh reads by (a merchant's ledger
entries, members and wallet events of a period). On a large PostgreSQL database create
those indexes beforehand with ``CREATE INDEX CONCURRENTLY`` under the same names; this
revision then finds them and leaves them be.
"""
from alembic import op
import sqlalchemy as sa
import wallet_service.db


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_SOURCE_INDEXES = (
    ('ix_ledger_transactions_merchant_id_created_at', 'ledger_transactions',
     ['merchant_id', 'created_at']),
    ('ix_members_merchant_id_created_at', 'members', ['merchant_id', 'created_at']),
    ('ix_wallet_events_merchant_id_occurred_at', 'wallet_events',
     ['merchant_id', 'occurred_at']),
)


def upgrade() -> None:
    existing = {(table, ix['name']) for table in ('ledger_transactions', 'members',
                                                  'wallet_events')
                for ix in sa.inspect(op.get_bind()).get_indexes(table)}
    for name, table, columns in _SOURCE_INDEXES:
        if (table, name) not in existing:
            op.create_index(name, table, columns, unique=False)
    counts = [sa.Column(name, sa.BigInteger(), nullable=False) for name in (
        'new_members', 'purchases', 'paid_purchases', 'revenue_minor', 'refunds_minor',
        'points_issued', 'points_redeemed', 'points_expired', 'points_net',
        'rewards_redeemed', 'coupons_redeemed', 'manual_entries', 'apple_installs',
        'apple_removals', 'google_installs', 'google_removals')]
    op.create_table('analytics_days',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('merchant_id', BIG_ID, nullable=False),
    sa.Column('program_id', BIG_ID, nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('location_id', BIG_ID, nullable=False),
    sa.Column('staff_id', BIG_ID, nullable=False),
    *counts,
    sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_days')),
    sa.UniqueConstraint('merchant_id', 'day', 'program_id', 'location_id', 'staff_id',
                        name='uq_analytics_days_key')
    )
    op.create_table('analytics_program_days',
    sa.Column('program_id', BIG_ID, nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('merchant_id', BIG_ID, nullable=False),
    *[sa.Column(name, sa.BigInteger(), nullable=False) for name in (
        'members_total', 'active_30', 'active_90', 'repeat_30', 'repeat_90',
        'points_outstanding')],
    sa.PrimaryKeyConstraint('program_id', 'day', name=op.f('pk_analytics_program_days'))
    )
    op.create_index('ix_analytics_program_days_merchant_id_day', 'analytics_program_days',
                    ['merchant_id', 'day'], unique=False)
    op.create_table('analytics_cohorts',
    sa.Column('program_id', BIG_ID, nullable=False),
    sa.Column('cohort_month', sa.Date(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('merchant_id', BIG_ID, nullable=False),
    sa.Column('active_members', sa.BigInteger(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('program_id', 'cohort_month', 'month',
                            name=op.f('pk_analytics_cohorts'))
    )
    op.create_index('ix_analytics_cohorts_merchant_id_cohort_month', 'analytics_cohorts',
                    ['merchant_id', 'cohort_month'], unique=False)
    op.create_table('analytics_breakdowns',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('merchant_id', BIG_ID, nullable=False),
    sa.Column('program_id', BIG_ID, nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('location_id', BIG_ID, nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('item', sa.String(length=130), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_breakdowns'))
    )
    op.create_index('ix_analytics_breakdowns_merchant_id_kind_day', 'analytics_breakdowns',
                    ['merchant_id', 'kind', 'day'], unique=False)
    op.create_table('analytics_refreshes',
    sa.Column('merchant_id', BIG_ID, nullable=False),
    sa.Column('refreshed_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('through', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'],
                            name=op.f('fk_analytics_refreshes_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('merchant_id', name=op.f('pk_analytics_refreshes'))
    )


def downgrade() -> None:
    op.drop_table('analytics_refreshes')
    op.drop_index('ix_analytics_breakdowns_merchant_id_kind_day',
                  table_name='analytics_breakdowns')
    op.drop_table('analytics_breakdowns')
    op.drop_index('ix_analytics_cohorts_merchant_id_cohort_month',
                  table_name='analytics_cohorts')
    op.drop_table('analytics_cohorts')
    op.drop_index('ix_analytics_program_days_merchant_id_day',
                  table_name='analytics_program_days')
    op.drop_table('analytics_program_days')
    op.drop_table('analytics_days')
    for name, table, _ in reversed(_SOURCE_INDEXES):
        op.drop_index(name, table_name=table)
