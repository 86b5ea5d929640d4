"""Fixtures: the real `vendorgate` binary as vendor simulator (`vendorgate sim`) and as proxy
server (`vendorgate serve`), an embedded gateway and a connected one.

The binary is $VENDORGATE_BIN, default <repo>/target/debug/vendorgate
(`cargo build -p vendorgate-server`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

import vendorgate

REPO = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "test-admin-token-3f9c1a"


def sim_credentials() -> Dict[str, str]:
    """The simulator's credentials (sim/credentials.json), by the environment variable the
    gateway reads each from: {"STRIPE_SECRET_KEY": …, "TWILIO_ACCOUNT_SID": …, …}."""
    c = json.loads((REPO / "sim" / "credentials.json").read_text())
    return {var: c[field] for var, field in c["env"].items()}


SIM_CREDENTIALS = sim_credentials()

PI_FORM = {"currency": "usd", "confirm": True, "payment_method": "pm_card_visa"}


def vendorgate_bin() -> Path:
    return Path(os.environ.get("VENDORGATE_BIN") or REPO / "target" / "debug" / "vendorgate")


class Proc:
    """A child process that announces its URL on its first stdout line."""

    def __init__(self, args: List[str], env: Dict[str, str], banner: str, log: Path) -> None:
        binary = vendorgate_bin()
        if not binary.exists():
            pytest.fail(
                f"the vendorgate binary is missing at {binary}: run `cargo build -p vendorgate-server` "
                "or set VENDORGATE_BIN",
                pytrace=False,
            )
        self.log = log
        self._logf = open(log, "wb")
        self.p = subprocess.Popen(
            [str(binary), *args],
            stdout=subprocess.PIPE,
            stderr=self._logf,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        line = self._first_line(timeout=30)
        m = re.search(r"(http://\S+)", line)
        if not line.startswith(banner) or not m:
            self.stop()
            pytest.fail(
                f"{' '.join(args)}: expected a first line '{banner} http://…', got {line!r}; "
                f"stderr: {log.read_text(errors='replace')[-2000:]}",
                pytrace=False,
            )
        self.url = m.group(1).rstrip("/")
        threading.Thread(target=self._drain, daemon=True).start()

    def _first_line(self, timeout: float) -> str:
        out: List[str] = []
        assert self.p.stdout is not None
        stdout = self.p.stdout
        t = threading.Thread(target=lambda: out.append(stdout.readline().decode(errors="replace")))
        t.daemon = True
        t.start()
        t.join(timeout)
        return out[0].strip() if out else ""

    def _drain(self) -> None:
        assert self.p.stdout is not None
        for _ in self.p.stdout:
            pass

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self._logf.close()


def http_json(url: str, method: str = "GET", token: Optional[str] = None) -> Any:
    req = urllib.request.Request(url, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def upstream_env(sim: str) -> Dict[str, str]:
    return {
        **SIM_CREDENTIALS,
        "VENDORGATE_STRIPE_URL": f"{sim}/stripe",
        "VENDORGATE_TWILIO_URL": f"{sim}/twilio",
        "VENDORGATE_RESEND_URL": f"{sim}/resend",
    }


@pytest.fixture(scope="session")
def sim_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`vendorgate sim` on a free port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VENDORGATE_")}
    p = Proc(
        ["sim", "--listen", "127.0.0.1:0"],
        env,
        "vendorgate-sim listening on",
        tmp_path_factory.mktemp("sim") / "sim.log",
    )
    yield p.url
    p.stop()


@pytest.fixture(scope="session", autouse=True)
def vendor_env(sim_url: str) -> Iterator[None]:
    """The environment an embedded gateway reads: the simulator's credentials and URLs."""
    env = upstream_env(sim_url)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def server(sim_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[str, str]]:
    """`vendorgate serve` on a free port, upstream = the simulator. Yields (url, admin token)."""
    d = tmp_path_factory.mktemp("server")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VENDORGATE_")}
    env.update(upstream_env(sim_url))
    env["VENDORGATE_ADMIN_TOKEN"] = ADMIN_TOKEN
    cfg = d / "vendorgate.toml"
    cfg.write_text(f"duplicate_window_secs = {UNGUARDED['duplicate_window_secs']}\n")
    p = Proc(
        ["serve", "--listen", "127.0.0.1:0", "--db", str(d / "server.db"), "--config", str(cfg)],
        env,
        "vendorgate listening on",
        d / "server.log",
    )
    yield p.url, ADMIN_TOKEN
    p.stop()


# Most tests repeat one call to fill a cap or race it, so their gateways turn the duplicate
# guard off by default; test_duplicates.py tests the guard with the default and per key.
UNGUARDED = {"duplicate_window_secs": 0}


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[vendorgate.Gateway]:
    gw = vendorgate.Gateway.open(tmp_path / "vg.db", config=UNGUARDED)
    yield gw
    gw.close()


@pytest.fixture
def connected(server: Tuple[str, str]) -> vendorgate.Gateway:
    url, token = server
    return vendorgate.Gateway.connect(url, admin_token=token)


@pytest.fixture(params=["embedded", "connect"])
def gw(request: pytest.FixtureRequest) -> vendorgate.Gateway:
    """The same test in both modes."""
    name = "embedded" if request.param == "embedded" else "connected"
    g: vendorgate.Gateway = request.getfixturevalue(name)
    return g


def sim_seen(sim: str) -> List[Dict[str, Any]]:
    seen: List[Dict[str, Any]] = http_json(f"{sim}/__sim/seen")
    return seen


def wait_until(pred: Any, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return bool(pred())
