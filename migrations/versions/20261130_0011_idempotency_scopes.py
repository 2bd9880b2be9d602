"""idempotency scopes

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 05:50:00

Migrations run while the previous release is still serving: keep every revision compatible
with the code that came before it, and avoid long table locks (split breaking changes over
two releases).

Client keys and the service's own keys get a namespace each. Until now both lived in
``ledger_transactions.idempotency_key``, unique per merchant: a client that sent
``Idempotency-Key: expire:12`` took the key the daily job expires lot 12 under, and the job
failed on it (or, for ``birthday:…``, ``referral:…``, paid nothing).

* ``natural_key`` (unique per merchant on its own) holds the service's keys from now on. No
  client key reaches that column, whatever it looks like, so nothing needs to be refused
  at the edge; and an entry can carry both kinds (an action bonus asked for with a client's
  key keeps its once-per-reference key too).
* ``idempotency_operation`` names the operation a client's key was sent to (``transaction``,
  ``stamps``, ``action``, ``reward.redeem``, ``coupon.redeem``); with the member of the
  entry's card and ``request_hash`` it is the key's scope (``services.ledger.IdempotencyScope``).

Existing rows: the service's keys are the ones with the prefixes services/automations.py,
services/bonuses.py and services/members.py wrote (``expire:`` on expiry entries; ``welcome:``,
``birthday:``, ``winback:``, ``referral:``, ``action:`` on bonus entries; a client never wrote
an entry of those types); they are copied to ``natural_key``. They also stay in
``idempotency_key`` for now, because the previous release, still serving, looks its natural
keys up there (clearing them could let it pay a win-back or an action twice); a later
revision may clear them (until then a client's key equal to one of these old strings is
refused with 422, as a key used already, and still stops nothing). Every other key is a client's, and gets the operation its entry's
type tells: ``reward.redeem`` for a reward, ``transaction`` for the rest (a stamp request
wrote the same entry as a transaction of stamps, so a retry of one that straddles the upgrade
is refused rather than replayed; so is a reward claim's, whose entry kept no request hash:
refused, never claimed twice). The rows the previous release writes while this one rolls out
have no operation; the service reads them the same way (``services.ledger``).
"""
from alembic import op
import sqlalchemy as sa
import wallet_service.db


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

_TXN = sa.table('ledger_transactions',
                sa.column('type', sa.String()),
                sa.column('idempotency_key', sa.String()),
                sa.column('idempotency_operation', sa.String()),
                sa.column('natural_key', sa.String()))

#: The service's keys before this revision: (entry type, key prefix). Frozen here rather than
#: imported, so the revision does what it did whatever the code becomes.
_NATURAL_KEYS = (
    ('expire', 'expire:'),
    ('bonus', 'welcome:'),
    ('bonus', 'birthday:'),
    ('bonus', 'winback:'),
    ('bonus', 'referral:'),
    ('bonus', 'action:'),
)

#: The operation a client's key was sent to, by the type of entry its request wrote.
_OPERATIONS = (
    ('transaction', ('earn', 'redeem', 'adjust', 'refund')),
    ('reward.redeem', ('reward',)),
)


def upgrade() -> None:
    # Nullable columns: the previous release neither reads nor writes them.
    with op.batch_alter_table('ledger_transactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('idempotency_operation', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('natural_key', sa.String(length=255), nullable=True))

    natural = sa.or_(*(sa.and_(_TXN.c.type == type_, _TXN.c.idempotency_key.startswith(prefix))
                       for type_, prefix in _NATURAL_KEYS))
    op.execute(_TXN.update().where(natural).values(natural_key=_TXN.c.idempotency_key))
    for operation, types in _OPERATIONS:
        op.execute(_TXN.update()
                   .where(_TXN.c.idempotency_key.is_not(None), _TXN.c.type.in_(types))
                   .values(idempotency_operation=operation))

    # The keys copied were unique per merchant already, so the constraint holds at once.
    with op.batch_alter_table('ledger_transactions', schema=None) as batch_op:
        batch_op.create_unique_constraint(
            batch_op.f('uq_ledger_transactions_merchant_id_natural_key'),
            ['merchant_id', 'natural_key'])


def downgrade() -> None:
    # The release before looks its natural keys up in idempotency_key: put them back there
    # unless a client's key took the same string meanwhile (the entry stays; the job it
    # came from does not need its key again: a lot expires once, a birthday passes). An
    # action bonus asked for with a client's key gives that key up for its natural one,
    # which keeps the bonus from being paid twice.
    op.execute(sa.text(
        "UPDATE ledger_transactions SET idempotency_key = natural_key "
        "WHERE natural_key IS NOT NULL AND NOT EXISTS ("
        "SELECT 1 FROM ledger_transactions AS other "
        "WHERE other.merchant_id = ledger_transactions.merchant_id "
        "AND other.idempotency_key = ledger_transactions.natural_key)"))
    with op.batch_alter_table('ledger_transactions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_ledger_transactions_merchant_id_natural_key'),
                                 type_='unique')
        batch_op.drop_column('natural_key')
        batch_op.drop_column('idempotency_operation')
