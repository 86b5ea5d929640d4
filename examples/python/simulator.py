"""Start `vendorgate sim` (the offline Stripe/Twilio/Resend simulator) for the examples, and
point an embedded gateway at it through the environment."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Iterator, Optional

REPO = Path(__file__).resolve().parents[2]

# The credentials the simulator accepts (real vendor keys in production).
SIM_CREDENTIALS = {
    "STRIPE_SECRET_KEY": "sk_test_vendorgate_sim_51XyZ",
    "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000042",
    "TWILIO_AUTH_TOKEN": "sim_twilio_auth_token_7c1e",
    "RESEND_API_KEY": "re_sim_2b9d4f",
}


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
        m = re.search(r"(http://\S+)", line)
        if not m:
            proc.kill()
            raise SystemExit(f"vendorgate sim did not start: {line!r}")
        sim_url = m.group(1)
    sim_url = sim_url.rstrip("/")
    os.environ.update(SIM_CREDENTIALS)
    os.environ["VENDORGATE_STRIPE_URL"] = f"{sim_url}/stripe"
    os.environ["VENDORGATE_TWILIO_URL"] = f"{sim_url}/twilio"
    os.environ["VENDORGATE_RESEND_URL"] = f"{sim_url}/resend"
    try:
        yield sim_url
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
