"""The merchant console (``/console``): server-rendered pages in Russian and English on the
same service functions and permissions as the API.

``frame`` holds the blueprint, the page decorator, rendering and the navigation; every other
module of this package is an area of the console that adds its pages to ``frame.bp``. The
package loads every module it holds, so a new area is a new module (its words a module in
``words/``, its templates under ``templates/console/``) and nothing else changes.
"""

from __future__ import annotations

import importlib
import pkgutil

from .frame import bp

__all__ = ["bp"]


def _load_areas() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name not in ("frame", "words"):
            importlib.import_module(f"{__name__}.{info.name}")


_load_areas()
