"""The service layer: functions that take a ``Session`` and plain values and never commit.

The caller (a view, a CLI command, a worker) owns the transaction.
"""
