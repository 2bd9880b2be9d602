"""The merchant REST API under ``/api/v1``: JSON in and out, ``Authorization: Bearer``.

One module per resource declares its operations on the blueprint of ``_blueprint``; the
services they call return models or dataclasses, and ``serializers`` turns those into the
response models. Importing this package registers every operation.
"""

from __future__ import annotations

from . import analytics
from . import campaigns
from . import docs
from . import import_export
from . import keys
from . import locations
from . import members
from . import merchant
from . import nps
from . import personal_data
from . import posters
from . import programs
from . import rewards
from . import transactions
from . import webhooks
from ._blueprint import PREFIX
from ._blueprint import bp

__all__ = ["PREFIX", "analytics", "bp", "campaigns", "docs", "import_export", "keys", "locations",
           "members", "merchant", "nps", "personal_data", "posters", "programs", "rewards",
           "transactions", "webhooks"]
