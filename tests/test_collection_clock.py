"""No test module reads the clock when it is imported.

A time read at import (a module constant, a ``pytest.mark.parametrize`` list, a default
argument, a class body) is taken when pytest collects the suite, and the test that uses it
runs seconds or minutes later: on a slow run it sees a stale "now" and fails by the clock.
Tests read the clock inside themselves (or in a fixture), or inject a clock into the code
under test. This scans every Python file under ``tests/`` for such reads.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

TESTS = Path(__file__).resolve().parent

#: Fully qualified callables that read a clock.
CLOCK_CALLS = frozenset({
    "time.time", "time.time_ns", "time.monotonic", "time.monotonic_ns", "time.perf_counter",
    "time.perf_counter_ns", "time.localtime", "time.gmtime", "time.ctime",
    "datetime.datetime.now", "datetime.datetime.utcnow", "datetime.datetime.today",
    "datetime.date.today",
})
#: Last name of a call that reads a clock whatever it was imported from (the service's
#: ``wallet_service.db.utcnow`` among them).
CLOCK_NAMES = frozenset({"utcnow"})


def _dotted(node: ast.expr) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


class _Scanner(ast.NodeVisitor):
    """Visits a module keeping track of whether the code visited runs at import: module and
    class bodies, decorators, default values and base classes do; function and lambda bodies
    do not."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}  # local name -> qualified name, from the imports
        self.at_import = True
        self.found: list[tuple[int, str]] = []

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.aliases[alias.asname] = alias.name
            else:
                top = alias.name.split(".")[0]
                self.aliases[top] = top

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f"{node.module or ''}.{alias.name}"

    def _deferred(self, nodes: list[ast.stmt] | ast.expr) -> None:
        saved, self.at_import = self.at_import, False
        for child in nodes if isinstance(nodes, list) else [nodes]:
            self.visit(child)
        self.at_import = saved

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        # Decorators and defaults are evaluated where the function is defined.
        for expr in getattr(node, "decorator_list", []):
            self.visit(expr)
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)
        self._deferred(node.body)

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function
    visit_Lambda = _function

    def visit_Call(self, node: ast.Call) -> None:
        parts = _dotted(node.func)
        if self.at_import and parts:
            qualified = ".".join([self.aliases.get(parts[0], parts[0]), *parts[1:]])
            if qualified in CLOCK_CALLS or parts[-1] in CLOCK_NAMES:
                self.found.append((node.lineno, ".".join(parts)))
        self.generic_visit(node)


def scan_source(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """(line, call) of every clock read that runs when ``source`` is imported."""
    scanner = _Scanner()
    scanner.visit(ast.parse(source, filename))
    return scanner.found


def clock_reads_at_import(path: Path) -> list[str]:
    """``path:line: call`` for every clock read that runs when the file is imported."""
    return [f"{path}:{line}: {call}()"
            for line, call in scan_source(path.read_text(encoding="utf-8"), str(path))]


def test_no_test_module_reads_the_clock_at_import() -> None:
    files = sorted(TESTS.rglob("*.py"))
    assert len(files) > 20
    found = [hit for path in files for hit in clock_reads_at_import(path)]
    assert found == [], ("read the clock inside the test (or inject one), not at import:\n"
                         + "\n".join(found))


def test_the_scanner_flags_reads_that_run_at_import() -> None:
    source = textwrap.dedent('''
        import datetime as dt
        import time
        from datetime import date
        from time import time as now_seconds
        from wallet_service.db import utcnow

        import pytest

        NOW = dt.datetime.now(dt.UTC)                                   # 10
        TODAY = date.today()                                            # 11
        STARTED = now_seconds()                                         # 12

        @pytest.mark.parametrize("ts", [int(time.time() * 1000)])       # 14
        def test_decorated(ts, when=utcnow()):                          # 15
            assert time.time() and dt.datetime.utcnow()                 # inside: fine

        class TestGroup:
            stamp = dt.datetime.today()                                 # 19

            def test_method(self, later=lambda: time.time()):          # lambda body: fine
                def inner(at=time.monotonic()):                         # runs with the test
                    return at
                return inner()

        def helper():
            return [dt.date.today() for _ in range(2)]                  # inside: fine
    ''')
    assert scan_source(source) == [
        (10, "dt.datetime.now"), (11, "date.today"), (12, "now_seconds"),
        (14, "time.time"), (15, "utcnow"), (19, "dt.datetime.today"),
    ]


def test_the_scanner_catches_a_timestamp_taken_when_parametrize_is_collected() -> None:
    # The shape of a bug this suite had: the APNs timestamp was fixed at collection, and the
    # case failed when the test ran more than a minute later.
    source = textwrap.dedent('''
        import time

        import pytest
        from apns_standin import Reply

        @pytest.mark.parametrize(("reply", "forgotten"), [
            (Reply(410, "Unregistered", timestamp=int(time.time() * 1000) + 60_000), True),
            (Reply(400, "BadDeviceToken"), True),
        ])
        def test_dead_tokens_remove_the_registration(reply, forgotten):
            pass
    ''')
    assert scan_source(source) == [(8, "time.time")]


def test_clock_reads_at_import_names_the_file_and_line(tmp_path: Path) -> None:
    module = tmp_path / "test_stale.py"
    module.write_text("import time\n\nDEADLINE = time.time() + 60\n", encoding="utf-8")
    assert clock_reads_at_import(module) == [f"{module}:3: time.time()"]
