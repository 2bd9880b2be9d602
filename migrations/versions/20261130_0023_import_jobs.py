"""import jobs

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-30 10:40:00

Migrations run while the previous release is still serving: keep every revision compatible
with the code that came before it, and avoid long table locks (split breaking changes over
two releases).
"""
from alembic import op
import sqlalchemy as sa
import wallet_service.db


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    # A new table: the previous release, still serving, neither reads it nor is stopped by it.
    op.create_table('import_jobs',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('merchant_id', _ID, nullable=False),
    sa.Column('program_id', _ID, nullable=False),
    sa.Column('created_by', _ID, nullable=False),
    sa.Column('created_ip', sa.String(length=64), nullable=True),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=True),
    sa.Column('mapping', sa.JSON(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('rows_done', sa.Integer(), server_default='0', nullable=False),
    sa.Column('rows_total', sa.Integer(), server_default='0', nullable=False),
    sa.Column('report', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', wallet_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lease_until', wallet_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', wallet_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['console_users.id'], name=op.f('fk_import_jobs_created_by_console_users')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_import_jobs_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['program_id'], ['loyalty_programs.id'], name=op.f('fk_import_jobs_program_id_loyalty_programs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_jobs'))
    )
    op.create_index('ix_import_jobs_merchant_id_id', 'import_jobs', ['merchant_id', 'id'], unique=False)
    op.create_index('ix_import_jobs_status_id', 'import_jobs', ['status', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_import_jobs_status_id', table_name='import_jobs')
    op.drop_index('ix_import_jobs_merchant_id_id', table_name='import_jobs')
    op.drop_table('import_jobs')
