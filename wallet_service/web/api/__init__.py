"""The merchant REST API under ``/api/v1``: JSON in and out, ``Authorization: Bearer``.

One module per resource declares its operations on the blueprint of ``_blueprint``; the
services they call return models or dataclasses, and ``serializers`` turns those into the
response models. Importing this package registers every operation.
"""

from __future__ import annotations

from . import campaigns
from . import docs
from . import keys
from . import locations
from . import members
from . import merchant
from . import personal_data
from . import posters
from . import programs
from . import rewards
from . import transactions
from ._blueprint import PREFIX
from ._blueprint import bp

__all__ = ["PREFIX", "bp", "campaigns", "docs", "keys", "locations", "members", "merchant",
           "personal_data", "posters", "programs", "rewards", "transactions"]
