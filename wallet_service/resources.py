"""Where the files shipped beside the code are: Alembic migrations and the built-in pass templates.

In the repository they are the top-level ``migrations/`` and ``pass_templates/`` folders (so
``alembic.ini`` keeps ``script_location = migrations`` for developers); ``pyproject.toml`` maps
them to the packages ``wallet_service.migrations`` and ``wallet_service.pass_templates``, so a
wheel carries them inside ``wallet_service/`` and an editable install points at the folders.
They are found through :mod:`importlib.resources`, never by a path relative to this file.
Each folder has an ``__init__.py``: setuptools' editable finder cannot import a namespace
package that ``package-dir`` maps outside its parent package.

Alembic and the template loader need a real directory, not just a
:class:`~importlib.resources.abc.Traversable`. Wheels are installed unzipped and the editable
install points at the source folders, so ``files()`` is a :class:`pathlib.Path` in both; a
zipped install (zipimport) is refused with a clear error rather than extracted to a
temporary folder that would vanish under Alembic's feet.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

from .errors import ConfigurationError


@cache
def _directory(package: str) -> Path:
    root = files(package)
    if not isinstance(root, Path) or not root.is_dir():
        raise ConfigurationError(
            f"{package} is not a folder on disk ({root!r}); install wallet-service unzipped")
    return root


def migrations_dir() -> Path:
    """The Alembic script folder (``env.py``, ``script.py.mako``, ``versions/``)."""
    return _directory("wallet_service.migrations")


def pass_templates_dir() -> Path:
    """The folder of built-in Apple Wallet templates, one sub-folder per template."""
    return _directory("wallet_service.pass_templates")
