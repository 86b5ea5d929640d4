"""Process-level behaviour: the GIL is released, Ctrl-C interrupts a blocking call, and the
runtime (and an open gateway) survive fork()."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from vendorgate import Gateway

from conftest import PI_FORM
from test_async import SLOW, slow_upstream  # noqa: F401  (fixture)

HERE = Path(__file__).resolve().parent


def test_gil_is_released_during_a_call(tmp_path: Path, slow_upstream: str) -> None:  # noqa: F811
    gw = Gateway.open(tmp_path / "g.db", config={"stripe": {"url": slow_upstream}})
    key = gw.issue_key("stripe", max_usd=1, allowed_endpoints=["GET /v1/balance"])
    c = gw.client(key)
    counter = [0]
    stop = threading.Event()

    def spin() -> None:  # pure-Python work: needs the GIL
        while not stop.is_set():
            counter[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    time.sleep(0.05)
    before = counter[0]
    r = c.request("GET", "/v1/balance")
    during = counter[0] - before
    stop.set()
    t.join()
    assert r.status == 200
    # While the main thread waited 0.4 s on the network, the other thread kept running.
    assert during > 10_000, during


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_interrupts_a_blocking_call(tmp_path: Path, slow_upstream: str) -> None:  # noqa: F811
    script = textwrap.dedent(
        f"""
        import signal, sys, time, vendorgate
        # What an interactive Python has; a child of a background shell inherits SIGINT
        # ignored, and Python then leaves it ignored (seen when CI was started with `&`).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        gw = vendorgate.Gateway.open({str(tmp_path / 'c.db')!r}, config={{"stripe": {{"url": {slow_upstream!r}}}}})
        key = gw.issue_key("stripe", max_usd=1, allowed_endpoints=["GET /**"])
        c = gw.client(key)
        print("ready", flush=True)
        t = time.monotonic()
        try:
            for _ in range(50):
                c.request("GET", "/v1/balance")
        except KeyboardInterrupt:
            print("interrupted after %.2f" % (time.monotonic() - t), flush=True)
            sys.exit(0)
        print("not interrupted", flush=True)
        sys.exit(1)
        """
    )
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "ready"
    time.sleep(SLOW / 2)
    sent = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=20)
    took = time.monotonic() - sent
    assert p.returncode == 0, out
    assert out.startswith("interrupted"), out
    assert took < 1.5, took  # well before 50 slow calls would have finished


FORK_WARNING = "ignore:This process .* is multi-threaded:DeprecationWarning"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
@pytest.mark.filterwarnings(FORK_WARNING)
def test_gateway_survives_fork(tmp_path: Path) -> None:
    gw = Gateway.open(tmp_path / "f.db")
    # The child and the parent make the same charge: about fork safety, not the duplicate guard.
    key = gw.issue_key("stripe", max_usd=300, allowed_endpoints=["POST /v1/payment_intents"], duplicate_window=0)
    c = gw.client(key)
    assert c.request("POST", "/v1/payment_intents", form={"amount": 10000, **PI_FORM}).status == 200

    pids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:  # child: the inherited gateway and a fresh one both work
            code = 1
            try:
                r = c.request("POST", "/v1/payment_intents", form={"amount": 5000, **PI_FORM})
                fresh = Gateway.open(tmp_path / "f.db")
                ok = r.status == 200 and fresh.usage(key).total_usd >= Decimal("150")
                code = 0 if ok else 2
            except BaseException as e:  # pragma: no cover - reported through the exit code
                sys.stderr.write(f"child failed: {e!r}\n")
            os._exit(code)
        pids.append(pid)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    # The parent still works, and sees the children's spend in the shared store.
    assert c.request("POST", "/v1/payment_intents", form={"amount": 5000, **PI_FORM}).status == 200
    assert gw.usage(key).spent_usd == Decimal("250")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
@pytest.mark.filterwarnings(FORK_WARNING)
def test_connected_gateway_survives_fork(connected: Gateway) -> None:
    key = connected.issue_key("stripe", max_usd=10, allowed_endpoints=["GET /v1/balance"])
    c = connected.client(key)
    assert c.request("GET", "/v1/balance").status == 200
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if c.request("GET", "/v1/balance").status == 200 and connected.usage(key).key_id == key.key_id else 2
        except BaseException as e:  # pragma: no cover
            sys.stderr.write(f"child failed: {e!r}\n")
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert c.request("GET", "/v1/balance").status == 200
