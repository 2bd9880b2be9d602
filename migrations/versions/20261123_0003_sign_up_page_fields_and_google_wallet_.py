"""sign-up page fields and google wallet state

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:55:45.185625

Migrations run while the previous release is still serving: keep every revision compatible
with the code that came before it, and avoid long table locks (split breaking changes over
two releases).
"""
import secrets

from alembic import op
import sqlalchemy as sa
import wallet_service.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('google_callbacks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('nonce', sa.String(length=200), nullable=False),
    sa.Column('event_type', sa.String(length=20), nullable=False),
    sa.Column('class_id', sa.String(length=200), nullable=False),
    sa.Column('object_id', sa.String(length=200), nullable=False),
    sa.Column('card_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('received_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_google_callbacks')),
    sa.UniqueConstraint('nonce', name=op.f('uq_google_callbacks_nonce'))
    )
    with op.batch_alter_table('google_callbacks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_google_callbacks_card_id'), ['card_id'], unique=False)

    op.create_table('google_classes',
    sa.Column('program_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('class_id', sa.String(length=200), nullable=False),
    sa.Column('synced_revision', sa.String(length=40), nullable=True),
    sa.Column('updated_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['loyalty_programs.id'], name=op.f('fk_google_classes_program_id_loyalty_programs')),
    sa.PrimaryKeyConstraint('program_id', name=op.f('pk_google_classes')),
    sa.UniqueConstraint('class_id', name=op.f('uq_google_classes_class_id'))
    )
    op.create_table('google_notifications',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('card_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('sent_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['card_id'], ['loyalty_cards.id'], name=op.f('fk_google_notifications_card_id_loyalty_cards')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_google_notifications'))
    )
    with op.batch_alter_table('google_notifications', schema=None) as batch_op:
        batch_op.create_index('ix_google_notifications_card_id_sent_at', ['card_id', 'sent_at'], unique=False)

    op.create_table('google_objects',
    sa.Column('card_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('object_id', sa.String(length=200), nullable=False),
    sa.Column('inserted', sa.Boolean(), nullable=False),
    sa.Column('synced_version', sa.Integer(), nullable=False),
    sa.Column('saved_at', wallet_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', wallet_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', wallet_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['card_id'], ['loyalty_cards.id'], name=op.f('fk_google_objects_card_id_loyalty_cards')),
    sa.PrimaryKeyConstraint('card_id', name=op.f('pk_google_objects')),
    sa.UniqueConstraint('object_id', name=op.f('uq_google_objects_object_id'))
    )
    with op.batch_alter_table('loyalty_programs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('enrollment', sa.JSON(), nullable=False,
                                      server_default='{}'))
        batch_op.add_column(sa.Column('join_token', sa.String(length=32), nullable=True))
    # Existing programs get their random join link id before the column becomes required.
    conn = op.get_bind()
    for (program_id,) in conn.execute(sa.text("SELECT id FROM loyalty_programs")).all():
        conn.execute(sa.text("UPDATE loyalty_programs SET join_token = :t WHERE id = :i"),
                     {"t": secrets.token_urlsafe(12), "i": program_id})
    with op.batch_alter_table('loyalty_programs', schema=None) as batch_op:
        batch_op.alter_column('join_token', existing_type=sa.String(length=32), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_loyalty_programs_join_token'), ['join_token'])

    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('answers', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('source', sa.String(length=20), nullable=False,
                                      server_default='api'))



def downgrade() -> None:
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_column('source')
        batch_op.drop_column('answers')

    with op.batch_alter_table('loyalty_programs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_loyalty_programs_join_token'), type_='unique')
        batch_op.drop_column('join_token')
        batch_op.drop_column('enrollment')

    op.drop_table('google_objects')
    with op.batch_alter_table('google_notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_google_notifications_card_id_sent_at')

    op.drop_table('google_notifications')
    op.drop_table('google_classes')
    with op.batch_alter_table('google_callbacks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_google_callbacks_card_id'))

    op.drop_table('google_callbacks')
