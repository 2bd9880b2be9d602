"""Alembic migrations; shipped in the wheel as ``wallet_service.migrations``.

This file makes the folder a regular package, which editable installs need to map it
(see wallet_service/resources.py)."""
