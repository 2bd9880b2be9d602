"""Who may do what: one set of permissions, and the bundles of them that callers hold.

Every merchant API operation declares the one permission it needs
(``ApiBlueprint.operation(permission=...)`` in ``web/routing.py``); the caller must hold it
or gets 403. A caller holds a *bundle* of permissions, named once here as data:

- an API key has a **scope** (stored on ``api_keys.scope``): ``admin`` holds everything,
  ``till`` what a point of sale needs (look members up, enroll them, post their purchases)
  and ``read`` only reads;
- a console user will have a **role**: ``owner``, ``manager`` or ``staff``. The roles are
  bundles of the same permissions, so the console and the API can never disagree about what
  "may change the program" means: ``owner`` holds what ``admin`` holds, ``staff`` what
  ``till`` holds, and ``manager`` everything but the keys and the webhooks.

A bundle *covers* another when it holds every permission of it: a key may only create keys
whose scope its own covers, so no key can mint a stronger one.

Pure: no Flask, no database.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class Permission(StrEnum):
    """What an operation needs; ``DESCRIPTIONS`` says which operations need each."""

    READ = "read"
    MEMBERS_WRITE = "members:write"
    MEMBERS_ERASE = "members:erase"
    MEMBERS_IMPORT = "members:import"
    TRANSACTIONS_WRITE = "transactions:write"
    EXPORT = "export"
    SETTINGS = "settings"
    AUTOMATIONS = "automations"
    KEYS = "keys"
    WEBHOOKS = "webhooks"


DESCRIPTIONS: Mapping[Permission, str] = MappingProxyType({
    Permission.READ: "Every read (`GET`) but the export, the key list and webhooks: programs, "
                     "members and their lookup by card or phone, histories, catalog, "
                     "coupons, campaigns, locations, the merchant, wallet events, QR codes "
                     "and posters, analytics",
    Permission.MEMBERS_WRITE: "Enroll members, change their details, assign and end tiers, "
                              "record the marketing consent",
    Permission.MEMBERS_ERASE: "What cannot be undone: close a card, erase a member's personal "
                              "data, record a withdrawn consent to processing (which erases)",
    Permission.MEMBERS_IMPORT: "Import members with their balances, stamps and tiers from "
                               "a CSV file (`POST /programs/{id}/members/import`): a whole "
                               "customer base at once, so not a till's",
    Permission.TRANSACTIONS_WRITE: "Earn, redeem, adjust, refund, stamps, action bonuses, "
                                   "redeem a reward or a coupon",
    Permission.EXPORT: "Export all of a member's data (`GET /members/{id}/export`), a "
                       "program's members and its transactions as CSV",
    Permission.SETTINGS: "Programs (rules, design, images), the rewards and coupons "
                         "catalog, campaigns, store locations, the merchant's settings",
    Permission.AUTOMATIONS: "Run the daily automations (`POST /automations/daily`)",
    Permission.KEYS: "List, create and revoke API keys; in the console also manage its "
                     "users and read the audit log (who may let others in sees who came in)",
    Permission.WEBHOOKS: "List, create, change and delete webhook endpoints (their URLs "
                         "receive members' data, signed with secrets), read their delivery "
                         "log and redeliver",
})

EVERYTHING: frozenset[Permission] = frozenset(Permission)


class Scope(StrEnum):
    """An API key's bundle of permissions."""

    ADMIN = "admin"
    TILL = "till"
    READ = "read"


SCOPES: Mapping[Scope, frozenset[Permission]] = MappingProxyType({
    Scope.ADMIN: EVERYTHING,
    Scope.TILL: frozenset({Permission.READ, Permission.MEMBERS_WRITE,
                           Permission.TRANSACTIONS_WRITE}),
    Scope.READ: frozenset({Permission.READ}),
})

#: The scope of a key created without one: the till's, because most keys go into a point of
#: sale, and a key that leaks from a till (a shared terminal, a cash register's config file)
#: then cannot change the program, mint or revoke keys, erase members, export their data or
#: run the daily job. ``admin`` must be asked for by name.
DEFAULT_SCOPE = Scope.TILL


class Role(StrEnum):
    """A console user's bundle of permissions, shared with the API's scopes."""

    OWNER = "owner"
    MANAGER = "manager"
    STAFF = "staff"


ROLES: Mapping[Role, frozenset[Permission]] = MappingProxyType({
    Role.OWNER: EVERYTHING,
    Role.MANAGER: EVERYTHING - {Permission.KEYS, Permission.WEBHOOKS},
    Role.STAFF: SCOPES[Scope.TILL],
})


def scope_permissions(scope: str) -> frozenset[Permission]:
    """The permissions of the scope called ``scope``; none for a name that is not a scope, so
    a stored value this version does not know fails closed."""
    try:
        return SCOPES[Scope(scope)]
    except ValueError:
        return frozenset()


def covers(held: Iterable[Permission], wanted: Iterable[Permission]) -> bool:
    """Whether ``held`` includes every permission of ``wanted``."""
    return frozenset(wanted) <= frozenset(held)


def scopes_with(permission: Permission) -> tuple[Scope, ...]:
    """The scopes that hold ``permission``, strongest first."""
    return tuple(scope for scope, held in SCOPES.items() if permission in held)


def requirement(permission: Permission) -> str:
    """One sentence for an operation's documentation: what it needs and which scopes have it."""
    scopes = ", ".join(f"`{scope}`" for scope in scopes_with(permission))
    return f"Needs the `{permission}` permission (API key scopes: {scopes})."


def scopes_summary() -> str:
    """One sentence naming what each scope holds, for the API's documentation."""
    parts = []
    for scope, held in SCOPES.items():
        names = "every permission" if held == EVERYTHING else ", ".join(
            f"`{p}`" for p in Permission if p in held)
        parts.append(f"`{scope}` keys hold {names}")
    return "; ".join(parts) + "."


def permissions_table() -> str:
    """The README's table of permissions, with the scopes and roles that hold each."""
    header = ["Permission", "Allows", *(f"`{s}` key" for s in Scope),
              *(f"{r} (console)" for r in Role)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for permission in Permission:
        marks = ["✓" if permission in SCOPES[s] else "" for s in Scope]
        marks += ["✓" if permission in ROLES[r] else "" for r in Role]
        lines.append("| " + " | ".join([f"`{permission}`", DESCRIPTIONS[permission], *marks])
                     + " |")
    return "\n".join(lines)
