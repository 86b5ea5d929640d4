"""Fixtures for end-to-end tests: the real `vendorgate` binary on port 0 in front of its
built-in vendor simulator, driven by the vendors' official Python SDKs."""

import json
import os
import pathlib
import subprocess
import urllib.error
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("VENDORGATE_BIN", str(ROOT / "target" / "debug" / "vendorgate"))
ADMIN_TOKEN = "e2e-admin-token-5f1c"


def sim_credentials():
    """The simulator's credentials (sim/credentials.json), by the environment variable the
    gateway reads each from: {"STRIPE_SECRET_KEY": …, "TWILIO_ACCOUNT_SID": …, …}."""
    c = json.loads((ROOT / "sim" / "credentials.json").read_text())
    return {var: c[field] for var, field in c["env"].items()}


SIM_CREDS = sim_credentials()


class Proc:
    """A child process that printed its URL on the first stdout line, after `prefix`; `info` is
    the JSON object after the URL if any (`vendorgate sim`: {"url": …, "env": {…}})."""

    def __init__(self, args, env=None, prefix="vendorgate listening on "):
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "TWILIO_", "RESEND_", "VENDORGATE_"))}
        full_env.update(env or {})
        self.p = subprocess.Popen([BIN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env, text=True)
        line = self.p.stdout.readline().strip()
        if not line.startswith(prefix):
            self.p.kill()
            raise RuntimeError(f"{args[0]} did not start: {line!r} {self.p.stderr.read()}")
        self.url, _, info = line[len(prefix):].partition(" ")
        self.info = json.loads(info) if info else {}

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
        return self.p.stderr.read()


def http(method, url, body=None, token=None, headers=None):
    """Small HTTP helper: returns (status, parsed JSON or text, headers)."""
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if body is not None and not isinstance(body, bytes):
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw, status, hdrs = r.read(), r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        raw, status, hdrs = e.read(), e.code, dict(e.headers)
    try:
        return status, json.loads(raw) if raw else None, hdrs
    except ValueError:
        return status, raw.decode(errors="replace"), hdrs


@pytest.fixture(scope="session")
def sim():
    p = Proc(["sim", "--listen", "127.0.0.1:0"], prefix="vendorgate-sim listening on ")
    yield p
    p.stop()


def start_gateway(tmp_path, sim_url, extra_env=None, config_text=None, name="gw"):
    env = {"VENDORGATE_ADMIN_TOKEN": ADMIN_TOKEN, **SIM_CREDS}
    for v in ("stripe", "twilio", "resend"):
        env[f"VENDORGATE_{v.upper()}_URL"] = f"{sim_url}/{v}"
    env.update(extra_env or {})
    args = ["serve", "--listen", "127.0.0.1:0", "--db", str(tmp_path / f"{name}.db")]
    if config_text:
        cfg = tmp_path / f"{name}.toml"
        cfg.write_text(config_text)
        args += ["--config", str(cfg)]
    return Proc(args, env=env)


class Gateway:
    def __init__(self, proc):
        self.proc = proc
        self.url = proc.url

    def issue(self, **spec):
        status, body, _ = http("POST", f"{self.url}/v1/keys", spec, token=ADMIN_TOKEN)
        assert status == 201, body
        return body

    def issue_status(self, **spec):
        status, body, _ = http("POST", f"{self.url}/v1/keys", spec, token=ADMIN_TOKEN)
        return status, body

    def revoke(self, key_id):
        status, body, _ = http("DELETE", f"{self.url}/v1/keys/{key_id}", token=ADMIN_TOKEN)
        assert status == 204, body

    def key(self, key_id):
        status, body, _ = http("GET", f"{self.url}/v1/keys/{key_id}", token=ADMIN_TOKEN)
        assert status == 200, body
        return body

    def audit(self, **q):
        qs = "&".join(f"{k}={v}" for k, v in q.items())
        status, body, _ = http("GET", f"{self.url}/v1/audit?{qs}", token=ADMIN_TOKEN)
        assert status == 200, body
        return body


@pytest.fixture
def gateway(tmp_path, sim):
    p = start_gateway(tmp_path, sim.url)
    yield Gateway(p)
    p.stop()


@pytest.fixture
def seen(sim):
    """Requests the simulator saw from now on."""
    http("POST", f"{sim.url}/__sim/reset")

    def get():
        return http("GET", f"{sim.url}/__sim/seen")[1]

    return get


ANY_SID = "AC" + "1" * 32


def stripe_client(gw, vault_key):
    """stripe-python pointed at the gateway: only the key and the base address differ."""
    import stripe

    return stripe.StripeClient(vault_key, base_addresses={"api": gw.url + "/stripe"}, max_network_retries=0)


def twilio_client(gw, vault_key):
    """twilio-python with the vault key as auth token and any AC… SID."""
    from twilio.rest import Client as TwilioClient

    c = TwilioClient(ANY_SID, vault_key)
    c.api.base_url = gw.url + "/twilio"
    return c


def use_resend(gw, vault_key):
    import resend

    resend.api_url = gw.url + "/resend"
    resend.api_key = vault_key
