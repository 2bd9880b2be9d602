"""Signing passes ahead of the devices' downloads in processes of their own.

A design change pushes to tens of thousands of devices, and each of their passes costs a
few milliseconds of CPU to sign. Signed on a thread of the worker, they would hold the GIL
the APNs client needs between its reads and writes, and the pushes would leave at the
signer's pace. :class:`SigningProcesses` hands the devices' ids to ``processes`` child
processes (``python -m wallet_service.signing``), each with its own GIL, its own database
connection and the lowest CPU priority (``SCHED_IDLE`` on Linux, else ``nice``), so that
on a busy machine the pushes, not the signing, get the CPU first. Each child signs and
stores one chunk at a time (:func:`.services.apple.sign_ahead`, committed per chunk), so
what it has signed is ready for downloads at once, and a device that asks for a pass not
signed yet gets it signed by the web, as always.

The children talk over their standard input and output, one line per chunk: the worker
writes the chunk's device ids, the child answers with how many passes it signed. A child
reads the worker's settings first (pickled), so it signs for the same public URL, pass
type and database. It ends when its input closes, so it never outlives its worker, even
one that was killed. The children start with the first chunk, and stay for the next.
Handing a chunk over never blocks: chunks wait in a queue of ids, a few bytes per device,
and a thread per child feeds it the next when it answered.
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import IO

from .config import Settings

log = logging.getLogger(__name__)

#: How much lower a signing child's CPU priority is than its worker's.
NICENESS = 10


class SigningProcesses:
    """``processes`` child processes that sign the passes of devices handed to
    :meth:`submit`; :meth:`close` ends them."""

    #: Devices whose passes a child signs and stores per chunk.
    CHUNK = 250

    def __init__(self, settings: Settings, processes: int = 1) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        self.settings = settings
        self._chunks: queue.SimpleQueue[list[int] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._waiting = 0  # devices handed over and not answered yet
        self._idle = threading.Condition(self._lock)
        #: Passes the children signed (as they answered).
        self.signed = 0
        self._closed = False
        self._processes = processes
        self._feeders: list[threading.Thread] = []  # started with the first chunk

    def submit(self, device_ids: Sequence[int]) -> None:
        """Have the passes of these devices signed and stored; returns at once."""
        ids = list(device_ids)
        if not ids or self._closed:
            return
        with self._lock:
            self._waiting += len(ids)
            if not self._feeders:
                self._feeders = [threading.Thread(target=self._feed, name=f"pass-sign-{i}",
                                                  daemon=True) for i in range(self._processes)]
                for feeder in self._feeders:
                    feeder.start()
        for start in range(0, len(ids), self.CHUNK):
            self._chunks.put(ids[start:start + self.CHUNK])

    @property
    def waiting(self) -> int:
        """Devices handed over whose passes are not signed yet."""
        with self._lock:
            return self._waiting

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every device handed over is done; ``False`` on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._waiting == 0, timeout)

    def close(self) -> None:
        """End the children: a chunk being signed is finished or rolled back; chunks still
        waiting are dropped (the web signs what a device asks for)."""
        self._closed = True
        with self._lock:
            feeders = list(self._feeders)
        while True:
            try:
                self._chunks.get_nowait()
            except queue.Empty:
                break
        for _ in feeders:
            self._chunks.put(None)
        for feeder in feeders:
            feeder.join(timeout=30)

    def _done(self, devices: int, signed: int) -> None:
        with self._idle:
            self._waiting -= devices
            self.signed += signed
            self._idle.notify_all()

    def _feed(self) -> None:
        """One child's thread: start it, hand it chunk after chunk, restart it if it died."""
        child: subprocess.Popen[bytes] | None = None
        try:
            while (chunk := self._chunks.get()) is not None:
                signed = 0
                try:
                    if child is None or child.poll() is not None:
                        child = self._start()
                    assert child.stdin is not None and child.stdout is not None
                    child.stdin.write((" ".join(map(str, chunk)) + "\n").encode())
                    child.stdin.flush()
                    answer = child.stdout.readline()
                    if not answer:
                        raise ConnectionError(f"the signing process ended ({child.wait()})")
                    signed = int(answer)
                except Exception:
                    log.exception("signing %d passes ahead failed; downloads sign them",
                                  len(chunk))
                    if child is not None:
                        _stop(child, kill=True)
                    child = None
                finally:
                    self._done(len(chunk), signed)
        finally:
            if child is not None:
                _stop(child)

    def _start(self) -> subprocess.Popen[bytes]:
        child = subprocess.Popen([sys.executable, "-m", "wallet_service.signing"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert child.stdin is not None
        pickle.dump(self.settings, child.stdin)
        child.stdin.flush()
        return child


def _stop(child: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    """End a child: at once, or once it has finished the chunk it is on (its input closes)."""
    if kill:
        child.kill()
    try:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        child.kill()
        child.wait()
    if child.stdout is not None:
        child.stdout.close()


def serve_chunks(settings: Settings, lines: IO[bytes], answers: IO[bytes]) -> None:
    """The child's side: sign each chunk of device ids read from ``lines`` and answer with
    how many passes it signed, until ``lines`` ends."""
    from .db import make_engine
    from .db import make_sessionmaker
    from .services.apple import PassFactory
    from .services.apple import sign_ahead

    engine = make_engine(settings.database_url, pool_size=1)
    sessions = make_sessionmaker(engine)
    factory = PassFactory(settings)
    try:
        for line in lines:
            signed = 0
            with sessions() as session:
                try:
                    signed = sign_ahead(session, factory, [int(i) for i in line.split()])
                    session.commit()
                except Exception:
                    session.rollback()
                    log.exception("signing passes ahead failed; downloads sign them")
            answers.write(f"{signed}\n".encode())
            answers.flush()
    finally:
        engine.dispose()


def _yield_the_cpu() -> None:
    """Run only on CPU that nothing else wants, where the system allows it (Linux's
    ``SCHED_IDLE``), else at a lower priority (``nice``). At ``nice`` 10 the signer still
    took a tenth of a contended core (CFS weights: 110 against 1,024), and during a fan-out
    every core is contended: by the worker's push loop, the database, the web. Signing
    ahead saves the devices' downloads a signature; the pushes that wake them come first.
    What is not signed when a device asks is signed by the web, as always."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # type: ignore[attr-defined]
        return
    except (AttributeError, OSError):
        pass
    try:
        os.nice(NICENESS)
    except OSError:
        pass


def main() -> None:
    # The answers get standard output to themselves: anything else printed goes to stderr.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    settings = pickle.load(sys.stdin.buffer)
    from . import logs

    logs.configure(settings.log_level, settings.log_format)
    _yield_the_cpu()
    try:
        serve_chunks(settings, sys.stdin.buffer, answers)
    except (KeyboardInterrupt, BrokenPipeError):
        pass  # stopped, or the worker is gone: it signs nothing more


if __name__ == "__main__":
    main()
