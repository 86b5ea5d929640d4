"""Start `vendorgate sim` (the offline Stripe/Twilio/Resend simulator) for the examples, and
point an embedded gateway at it through the environment."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, Iterator, Optional

REPO = Path(__file__).resolve().parents[2]


def sim_env(sim_url: str) -> Dict[str, str]:
    """What points a gateway at the simulator at `sim_url`: the credentials it accepts (real
    vendor keys in production) and each vendor's URL, from sim/credentials.json."""
    c = json.loads((REPO / "sim" / "credentials.json").read_text())
    env = {var: c[field] for var, field in c["env"].items()}
    env.update({var: sim_url + path for var, path in c["url_env"].items()})
    return env


def find_binary() -> str:
    """$VENDORGATE_BIN, else the workspace's target/{debug,release}/vendorgate, else PATH."""
    env = os.environ.get("VENDORGATE_BIN")
    if env:
        return env
    for profile in ("debug", "release"):
        p = REPO / "target" / profile / "vendorgate"
        if p.exists():
            return str(p)
    found = shutil.which("vendorgate")
    if found:
        return found
    raise SystemExit("vendorgate binary not found: run `cargo build -p vendorgate-server` or set VENDORGATE_BIN")


@contextlib.contextmanager
def simulator(sim_url: Optional[str] = None) -> Iterator[str]:
    """Yield the simulator's base URL: `sim_url` if given, else a `vendorgate sim` started
    here (and stopped on exit). Sets the env an embedded gateway reads."""
    proc = None
    if sim_url is None:
        proc = subprocess.Popen(
            [find_binary(), "sim", "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        # `vendorgate-sim listening on URL {"url": …, "env": {…}}`
        m = re.search(r"(http://\S+) (\{.*\})$", line.strip())
        if not m:
            proc.kill()
            raise SystemExit(f"vendorgate sim did not start: {line!r}")
        sim_url = m.group(1).rstrip("/")
        env = json.loads(m.group(2))["env"]
    else:
        sim_url = sim_url.rstrip("/")
        env = sim_env(sim_url)
    os.environ.update(env)
    try:
        yield sim_url
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
