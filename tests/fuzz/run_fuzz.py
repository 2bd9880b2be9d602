"""The fuzzing gate: the merchant API and its OpenAPI document must agree.

Starts a live ``wallet-service serve --workers 2 --no-worker`` on the database given
(``--database-url``, PostgreSQL in CI), builds its schema with ``wallet-service db upgrade``,
creates a merchant with ``wallet-service create-merchant --json`` and, through the API, a
program of each kind, members, a transaction, a reward, a coupon, a campaign, a store location
and a spare API key, so that the ids 1, 2, ... the fuzzer tries name real resources. Then it
runs Schemathesis against ``/api/v1/openapi.json`` with the merchant's key and these checks:

* ``not_a_server_error``: no 5xx, ever;
* ``status_code_conformance``: every status answered is declared for its operation;
* ``content_type_conformance``: every answer has a media type its status declares;
* ``response_schema_conformance``: every body matches its declared schema;
* ``negative_data_rejection``: a request the schema forbids (a wrong type, a value out of
  range, an unknown field) is refused with a 4xx, never taken.

The opposite check (``positive_data_acceptance``: every request the schema allows is taken)
is not run: the service rightly refuses schema-valid requests that break a rule the schema
cannot state (a phone number that does not exist, a tier the program does not have, a day
more than a week back); such refusals are 400/404/409/422 answers the document declares.

The server's log is read afterwards too: an unhandled exception logged is a failure even if
its answer looked fine. The run is bounded (``--max-examples`` per operation and phase, and
``--deadline`` for the whole run), prints how many operations and test cases it ran and how
long it took, and stops the server whatever happens. Exit status 0 only if all of it passed.

Nothing is excluded: every operation of the document is fuzzed, the image upload included
(its body is generated as arbitrary bytes, which the service refuses as 400). One request is
changed before it is sent, in ``hooks.py`` beside this file: ``DELETE /api-keys/{key_id}``
with the id of the key the fuzzer authenticates with is sent for the spare key instead, so
that the run does not lock itself out halfway (every later answer would be 401).

Usage (from the repository root, with the project's virtualenv and the ``fuzz`` extra)::

    .venv/bin/pip install -e '.[fuzz]'
    .venv/bin/python tests/fuzz/run_fuzz.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/DB --reset-schema

``--reset-schema`` drops and rebuilds the database's ``public`` schema first (the test suite
leaves its own tables there). Without ``--database-url`` the service uses an embedded SQLite
database in a temporary folder.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "negative_data_rejection")
#: Schemathesis's phases: the schema's examples, the boundary and negative cases derived
#: from each schema (coverage), and random fuzzing. The stateful phase needs OpenAPI links,
#: which the document does not declare.
PHASES = "examples,coverage,fuzzing"
DEFAULT_SEED = 20261201


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="wallet-fuzz-"))
    server: subprocess.Popen[bytes] | None = None
    log_path = work / "server.log"
    ok = False
    try:
        env = _service_env(args, work)
        if args.reset_schema:
            _reset_schema(env["WALLET_DATABASE_URL"])
        _run([*_wallet_service(), "db", "upgrade"], env)
        merchant = json.loads(_run([*_wallet_service(), "create-merchant", "Fuzz",
                                    "--time-zone", "Europe/Moscow", "--json"], env))
        key = merchant["api_key"]
        server = _serve(env, args.port, log_path)
        _wait_healthy(args.port, server, log_path)
        seeded = _seed(args.port, key)
        print(f"seeded: {', '.join(f'{k} {v}' for k, v in seeded.items())}", flush=True)
        report = work / "report.json"
        fuzz_ok = _schemathesis(args, key, seeded, report, work)
        log_ok = _server_log_clean(log_path)
        summary = _summary(report)
        print(f"fuzzing gate: {summary}; {time.monotonic() - started:.1f} s in all",
              flush=True)
        ok = fuzz_ok and log_ok
    finally:
        if server is not None:
            _stop(server)
        if not ok and log_path.exists():
            print("--- server log (last 60 lines)")
            print("\n".join(log_path.read_text(errors="replace").splitlines()[-60:]))
        shutil.rmtree(work, ignore_errors=True)
    print("FUZZING GATE PASSED" if ok else "FUZZING GATE FAILED", flush=True)
    return 0 if ok else 1


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--database-url", default=os.environ.get("WALLET_DATABASE_URL"),
                        help="SQLAlchemy URL of the database to serve from (default: "
                             "$WALLET_DATABASE_URL, else SQLite in a temporary folder)")
    parser.add_argument("--reset-schema", action="store_true",
                        help="PostgreSQL: drop and rebuild the public schema first")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--max-examples", type=int, default=25,
                        help="test cases per operation and phase (default 25)")
    parser.add_argument("--deadline", type=float, default=300.0,
                        help="seconds the Schemathesis run may take before it counts as "
                             "failed (default 300)")
    parser.add_argument("--seed", default=str(DEFAULT_SEED),
                        help=f"Schemathesis seed (default {DEFAULT_SEED}, so CI is "
                             "repeatable; 'random' for a new one each run)")
    # One: Hypothesis describes its strategies by parsing source code, and two threads
    # parsing at once can trip CPython 3.11's AST recursion check ("AST constructor
    # recursion depth mismatch"), an error of the tool, not of the service.
    parser.add_argument("--workers", type=int, default=1,
                        help="concurrent Schemathesis workers (default 1)")
    parser.add_argument("--checks", default=",".join(CHECKS),
                        help=f"Schemathesis checks (default: {','.join(CHECKS)})")
    args = parser.parse_args(argv)
    if not args.port:
        args.port = _free_port()
    return args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wallet_service() -> list[str]:
    """The ``wallet-service`` command of the Python running this script."""
    script = Path(sys.executable).with_name("wallet-service")
    return [str(script)] if script.exists() else [sys.executable, "-m", "wallet_service.cli"]


def _service_env(args: argparse.Namespace, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WALLET_")}
    env.update({
        "WALLET_DATABASE_URL": args.database_url or f"sqlite:///{work / 'wallet.db'}",
        "WALLET_INSTANCE_PATH": str(work / "instance"),
        "WALLET_PUBLIC_URL": f"http://127.0.0.1:{args.port}",
        "WALLET_SECRET_KEY": "fuzzing-gate-secret",
        "WALLET_PUSH_BACKEND": "null",
        "WALLET_LOG_LEVEL": "WARNING",
        "WALLET_DB_POOL_SIZE": "5",
    })
    return env


def _reset_schema(url: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy import text

    if not url.startswith("postgresql"):
        raise SystemExit("--reset-schema is for PostgreSQL URLs")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    print("reset the public schema", flush=True)


def _run(cmd: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[-3:])} failed ({done.returncode}):\n"
                         f"{done.stdout}{done.stderr}")
    return done.stdout


def _serve(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [*_wallet_service(), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "2", "--no-worker"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_healthy(port: int, server: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"serve exited ({server.returncode}):\n{log_path.read_text()}")
        try:
            if _request(port, "GET", "/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("serve did not answer /healthz within 60 s")


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
    print("stopped the server", flush=True)


def _request(port: int, method: str, path: str, body: Any = None,
             key: str | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    try:
        conn.request(method, path, None if body is None else json.dumps(body), headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    return response.status, (json.loads(data) if data.startswith(b"{") else data)


def _seed(port: int, key: str) -> dict[str, list[int]]:
    """Resources for the fuzzer to find: two of each where that matters (one may be closed,
    erased, retired or deleted early in the run, the other then still answers)."""

    def post(path: str, body: Any, status: int = 201) -> dict[str, Any]:
        got, data = _request(port, "POST", "/api/v1" + path, body, key)
        if got != status:
            raise SystemExit(f"seeding: POST {path} answered {got}: {data!r}")
        return data  # type: ignore[no-any-return]

    tiers = [{"name": "Silver", "threshold": 0, "discount_percent": 5},
             {"name": "Gold", "threshold": 1000, "discount_percent": 10}]
    programs = [
        post("/programs", {"name": "Fuzz points", "kind": "points", "tiers": tiers,
                           "bonuses": {"actions": {"review": 50}}}),
        post("/programs", {"name": "Fuzz stamps", "kind": "stamps"}),
        post("/programs", {"name": "Fuzz cashback", "kind": "cashback"}),
        post("/programs", {"name": "Fuzz discount", "kind": "discount", "tiers": tiers}),
    ]
    members = []
    for i, program in enumerate(programs):
        for j in range(2):
            members.append(post(f"/programs/{program['id']}/members", {
                "name": f"Member {i}{j}", "phone": f"+7 912 345-6{i}-{j}0",
                "email": f"m{i}{j}@example.com", "marketing_consent": True}))
    post(f"/members/{members[0]['id']}/transactions", {"type": "earn", "points": 500})
    post(f"/members/{members[1]['id']}/transactions", {"type": "earn", "amount": "1250.00"})
    rewards = [post(f"/programs/{programs[0]['id']}/rewards",
                    {"name": f"Reward {n}", "cost_points": 10}) for n in range(2)]
    coupons = [post(f"/programs/{programs[0]['id']}/coupons", {"title": f"Coupon {n}"})
               for n in range(2)]
    post(f"/programs/{programs[0]['id']}/campaigns", {"text": "Hello"})
    locations = [post("/locations", {"name": f"Store {n}", "address": "Tverskaya 1",
                                     "latitude": 55.75, "longitude": 37.61}) for n in range(2)]
    spare = post("/api-keys", {"name": "spare"})
    return {"programs": [p["id"] for p in programs], "members": [m["id"] for m in members],
            "rewards": [r["id"] for r in rewards], "coupons": [c["id"] for c in coupons],
            "locations": [loc["id"] for loc in locations], "keys": [1, spare["id"]]}


def _config(seeded: dict[str, list[int]]) -> str:
    """schemathesis.toml: path ids drawn from the seeded ones half of the time."""
    lines = []
    bindings = {"program_id": "programs", "member_id": "members", "reward_id": "rewards",
                "coupon_id": "coupons", "location_id": "locations", "key_id": "keys"}
    for name in sorted(set(bindings.values())):
        lines.append(f"[dictionaries.{name}]\nvalues = {json.dumps(seeded[name])}\n")
    lines.append("[parameters]")
    for param, dictionary in bindings.items():
        lines.append(f'"path.{param}" = {{ dictionary = "{dictionary}", probability = 0.5 }}')
    return "\n".join(lines) + "\n"


def _schemathesis(args: argparse.Namespace, key: str, seeded: dict[str, list[int]],
                  report: Path, work: Path) -> bool:
    config = work / "schemathesis.toml"
    config.write_text(_config(seeded))
    env = dict(os.environ)
    env["SCHEMATHESIS_HOOKS"] = str(HERE / "hooks.py")
    env["FUZZ_OWN_KEY_ID"] = str(seeded["keys"][0])
    env["FUZZ_SPARE_KEY_ID"] = str(seeded["keys"][1])
    cmd = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
        f"http://127.0.0.1:{args.port}/api/v1/openapi.json",
        "--header", f"Authorization: Bearer {key}",
        "--checks", args.checks,
        "--phases", PHASES,
        "--max-examples", str(args.max_examples),
        "--workers", str(args.workers),
        "--request-timeout", "30",
        "--generation-database", "none",
        "--suppress-health-check", "all",
        "--report", "json", "--report-json-path", str(report),
        "--no-color",
    ]
    if args.seed != "random":
        cmd += ["--seed", args.seed]
    print(f"running Schemathesis: {' '.join(cmd[4:6])} {' '.join(cmd[6:])}"
          .replace(key, "<key>"), flush=True)
    started = time.monotonic()
    process = subprocess.Popen(cmd, env=env, cwd=work, start_new_session=True)
    try:
        code = process.wait(timeout=args.deadline)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        print(f"Schemathesis ran past the deadline of {args.deadline:.0f} s", flush=True)
        return False
    print(f"Schemathesis finished in {time.monotonic() - started:.1f} s (exit {code})",
          flush=True)
    return code == 0


_LOGGED_ERROR = re.compile(r"Traceback \(most recent call last\)|unhandled error| ERROR ")


def _server_log_clean(log_path: Path) -> bool:
    lines = log_path.read_text(errors="replace").splitlines()
    bad = [n for n, line in enumerate(lines) if _LOGGED_ERROR.search(line)]
    if bad:
        print(f"the server logged {len(bad)} error line(s); the first:")
        print("\n".join(lines[bad[0]:bad[0] + 40]))
    return not bad


def _summary(report: Path) -> str:
    if not report.exists():
        return "no report was written"
    data = json.loads(report.read_text())
    ops = data.get("operations") or {}
    cases = data.get("test_cases") or {}
    failures = sum(f.get("count", 0) for f in data.get("failures", []))
    return (f"{ops.get('tested', 0)} of {ops.get('total', 0)} operations tested, "
            f"{cases.get('generated', 0)} test cases, {failures} failures, "
            f"{len(data.get('errors', []))} errors, Schemathesis "
            f"{data.get('schemathesis_version')} ran {data.get('running_time', 0):.1f} s "
            f"(seed {data.get('seed')})")


if __name__ == "__main__":
    sys.exit(main())
