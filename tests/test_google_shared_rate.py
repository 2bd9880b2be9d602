"""Google's request rate is the project's, not a process's (google-wallet spec §1.8): every
web and worker process counts its calls in the rate-limit storage, so together they keep to
``WALLET_GOOGLE_RATE_PER_SECOND``, and a customer's tap goes ahead of background work.

The two-process test builds Google Wallet twice from one set of settings, as two processes
do, and counts what the Google stand-in receives in every 1-second window. With Redis it
needs a Redis server (``WALLET_TEST_REDIS_URL``, default db 13 of the local one) and skips,
saying why, when none answers."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from google_standin import GoogleWalletStandIn
from limits.storage import MemoryStorage
from serve_support import free_port

from wallet_service.config import load_settings
from wallet_service.google import GoogleCard
from wallet_service.google import GoogleProgram
from wallet_service.google import loyalty_class
from wallet_service.google import loyalty_object
from wallet_service.google import object_patch
from wallet_service.ratelimit import SharedRequestRate
from wallet_service.ratelimit import make_storage
from wallet_service.state import make_google

REDIS_URL = os.environ.get("WALLET_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
ISSUER = "3388000000012345678"
PROGRAM = GoogleProgram(program_id=1, name="Rewards", merchant_name="Shop",
                        logo_url="https://cdn.example.com/logo.png", background_color="#ffffff",
                        languages=("en",))


class Sleeps(list[float]):
    """A ``sleep`` that records each wait and then waits."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        time.sleep(seconds)


def test_background_work_leaves_room_for_a_waiting_customer() -> None:
    sleeps = Sleeps()
    budget = SharedRequestRate(10, storage=MemoryStorage(), name="priority", sleep=sleeps)
    assert (budget.limit, budget.background_limit) == (9, 7)  # 5 % headroom, 20 % reserve
    for _ in range(7):
        budget.acquire()
    assert sleeps == []
    # The background share is used up, yet a customer's calls go at once ...
    budget.acquire(urgent=True)
    budget.acquire(urgent=True)
    assert sleeps == []
    # ... until the whole second's budget is used: then they wait for the window too.
    started = time.monotonic()
    budget.acquire(urgent=True)
    assert sleeps and 0 < time.monotonic() - started <= 1.1


def test_background_work_waits_while_the_reserve_is_free() -> None:
    sleeps = Sleeps()
    budget = SharedRequestRate(10, storage=MemoryStorage(), name="background", sleep=sleeps)
    for _ in range(budget.background_limit):
        budget.acquire()
    assert sleeps == []
    budget.acquire()
    assert sleeps  # the reserve stays for customers


def test_an_unreachable_shared_storage_counts_in_the_process() -> None:
    budget = SharedRequestRate(
        50, storage=make_storage(f"redis://127.0.0.1:{free_port()}/0"), name="down")
    started = time.monotonic()
    for _ in range(5):
        budget.acquire()
    assert time.monotonic() - started < 5  # one connection timeout, then in memory


@pytest.fixture
def redis_url() -> Iterator[str]:
    try:
        import redis
    except ImportError:
        pytest.skip("the redis package is not installed (pip install 'wallet-service[redis]')")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis answers at {REDIS_URL} ({type(exc).__name__}); "
                    "set WALLET_TEST_REDIS_URL to run the shared Google rate test")
    finally:
        client.close()
    yield REDIS_URL


@pytest.mark.parametrize("where", ["redis", "memory"])
def test_two_processes_keep_to_one_google_rate(where: str, request: pytest.FixtureRequest,
                                               tmp_path: Path) -> None:
    rate, per_process_threads, patches = 20, 3, 60
    with GoogleWalletStandIn() as standin:
        account = standin.service_account(tmp_path / "service-account.json")
        settings = load_settings({
            "INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "test", "GOOGLE_ISSUER_ID": ISSUER,
            "GOOGLE_CREDENTIALS": str(account.path), "GOOGLE_API_URL": standin.url,
            "GOOGLE_RATE_PER_SECOND": str(rate)}, environ={})
        if where == "redis":
            url = request.getfixturevalue("redis_url")
            storages = [make_storage(url), make_storage(url)]  # each process its own client
        else:
            shared = MemoryStorage()  # one storage: what Redis gives separate processes
            storages = [shared, shared]
        wallets = [make_google(settings, storage) for storage in storages]
        standin.seed_class(loyalty_class(ISSUER, PROGRAM))
        cards = [GoogleCard(serial=f"30000000{i:05d}", member_name="Anna", balance=i)
                 for i in range(patches)]
        for member in cards:
            standin.seed_object(loyalty_object(ISSUER, PROGRAM, member))
        for wallet in wallets:  # access tokens fetched before the measured part
            wallet.client.get_object(loyalty_object(ISSUER, PROGRAM, cards[0])["id"])
        time.sleep(1.1)
        standin.clear_requests()
        work = list(cards)
        lock = threading.Lock()

        def process(wallet) -> None:  # type: ignore[no-untyped-def]
            while True:
                with lock:
                    if not work:
                        return
                    member = work.pop()
                wallet.client.patch_object(loyalty_object(ISSUER, PROGRAM, member)["id"],
                                           object_patch(PROGRAM, member))

        threads = [threading.Thread(target=process, args=(wallet,))
                   for wallet in wallets for _ in range(per_process_threads)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        for wallet in wallets:
            wallet.client.close()
        received = standin.api_requests()
    assert len(received) == patches and all(r.status == 200 for r in received)
    # Alone, each process would send up to its background share (15/s): 30/s together.
    budget = wallets[0].client.budget
    assert isinstance(budget, SharedRequestRate) and budget.background_limit == 15
    assert standin.max_in_window(1.0, received) <= rate
    assert elapsed > (patches - budget.background_limit) / budget.background_limit * 0.9
