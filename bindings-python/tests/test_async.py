"""asyncio: arequest never blocks the event loop; many requests run concurrently."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Iterator, List

import pytest

import vendorgate
from vendorgate import Gateway

from conftest import PI_FORM, wait_until

SLOW = 0.4


class SlowStripe(http.server.BaseHTTPRequestHandler):
    """A stand-in upstream that takes SLOW seconds to answer GET /v1/balance."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        time.sleep(SLOW)
        body = json.dumps({"object": "balance", "available": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128  # the default backlog (5) drops bursts of connects for 1 s
    daemon_threads = True


@pytest.fixture(scope="module")
def slow_upstream() -> Iterator[str]:
    srv = Server(("127.0.0.1", 0), SlowStripe)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


@pytest.fixture
def slow_gw(tmp_path: Path, slow_upstream: str) -> Gateway:
    return Gateway.open(tmp_path / "slow.db", config={"stripe": {"url": slow_upstream}})


async def ticker(stop: asyncio.Event, ticks: List[float]) -> None:
    while not stop.is_set():
        ticks.append(time.monotonic())
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_event_loop_keeps_ticking(slow_gw: Gateway) -> None:
    key = slow_gw.issue_key("stripe", max_usd=1, allowed_endpoints=["GET /v1/balance"])
    c = slow_gw.client(key)
    stop = asyncio.Event()
    ticks: List[float] = []
    t = asyncio.ensure_future(ticker(stop, ticks))
    start = time.monotonic()
    rs = await asyncio.gather(*(c.arequest("GET", "/v1/balance") for _ in range(20)))
    elapsed = time.monotonic() - start
    stop.set()
    await t
    assert [r.status for r in rs] == [200] * 20
    # 20 calls of 0.4 s each ran concurrently, not one after another (8 s).
    assert elapsed < 4 * SLOW, elapsed
    # The loop was free the whole time: many ticks, no long gap.
    during = [x for x in ticks if start <= x <= start + elapsed]
    assert len(during) >= 10, len(during)
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert max(gaps) < SLOW / 2, max(gaps)


@pytest.mark.asyncio
async def test_gather_many_against_cap(gw: Gateway) -> None:
    key = gw.issue_key("stripe", max_usd=500, allowed_endpoints=["POST /v1/payment_intents"])
    ac = gw.aclient(key)
    results = await asyncio.gather(
        *(ac.request("POST", "/v1/payment_intents", form={"amount": 10000, **PI_FORM}) for _ in range(30)),
        return_exceptions=True,
    )
    ok = [r for r in results if isinstance(r, vendorgate.Response)]
    refused = [r for r in results if isinstance(r, vendorgate.SpendCapExceeded)]
    assert len(ok) == 5 and len(refused) == 25, results
    assert all(e.key_id == key.key_id for e in refused)
    assert gw.usage(key).spent_usd == Decimal("500")


@pytest.mark.asyncio
async def test_async_errors_are_typed(gw: Gateway) -> None:
    key = gw.issue_key("stripe", max_usd=1, allowed_endpoints=["GET /v1/balance"])
    c = gw.client(key)
    with pytest.raises(vendorgate.EndpointNotAllowed):
        await c.arequest("GET", "/v1/charges")
    gw.revoke(key)
    with pytest.raises(vendorgate.KeyRevoked):
        await c.arequest("GET", "/v1/balance")
    with pytest.raises(TypeError):
        await c.arequest("GET", "/v1/balance", body=1)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_cancelled_request_still_finishes_and_is_audited(slow_gw: Gateway) -> None:
    key = slow_gw.issue_key("stripe", max_usd=1, allowed_endpoints=["GET /v1/balance"])
    task = asyncio.ensure_future(slow_gw.client(key).arequest("GET", "/v1/balance"))
    await asyncio.sleep(SLOW / 4)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wait_until(lambda: len(slow_gw.audit(key=key)) == 1, timeout=5)
    assert slow_gw.audit(key=key)[0]["decision"] == "forwarded"


def test_arequest_needs_a_running_loop(embedded: Gateway) -> None:
    key = embedded.issue_key("stripe", max_usd=1, allowed_endpoints=["GET /v1/balance"])
    coro = embedded.client(key).arequest("GET", "/v1/balance")
    # Driven by asyncio.run, it works; the coroutine object itself does nothing until awaited.
    r = asyncio.run(coro)
    assert r.status == 200
