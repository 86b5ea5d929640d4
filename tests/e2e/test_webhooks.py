"""Warnings and webhooks through the real binary: events caused by calls of the official Stripe
SDK wait in the gateway's outbox while the receiver is down, survive a restart of the gateway,
and then arrive exactly once each, every one verified by an independent Standard Webhooks
implementation (the `standardwebhooks` package from PyPI). A Slack-format webhook gets a
message a person can read."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import stripe
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from conftest import ADMIN_TOKEN, Gateway, http, start_gateway, stripe_client

# Every 1 s, 30 times: the receiver being down costs the test seconds, not hours.
FAST_RETRIES = "webhook_retry_secs = [" + ", ".join(["1"] * 30) + "]\n"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Receiver:
    """Records every POST: path, headers and raw body."""

    def __init__(self, port):
        self.got = []
        got = self.got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                got.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def create_webhook(gw, **spec):
    status, body, _ = http("POST", f"{gw.url}/v1/webhooks", spec, token=ADMIN_TOKEN)
    assert status == 201, body
    return body


def events(gw):
    status, body, _ = http("GET", f"{gw.url}/v1/events", token=ADMIN_TOKEN)
    assert status == 200, body
    return body


def test_events_survive_a_down_receiver_and_a_restart_and_arrive_once_signed(tmp_path, sim):
    port = free_port()  # nothing listens here yet: the receiver is down
    gw = Gateway(start_gateway(tmp_path, sim.url, config_text=FAST_RETRIES))
    hook = create_webhook(gw, url=f"http://127.0.0.1:{port}/events")
    assert hook["secret"].startswith("whsec_") and hook["events"] == ["*"]
    slack = create_webhook(gw, url=f"http://127.0.0.1:{port}/slack", events=["spend.threshold_crossed"], format="slack")
    status, listed, _ = http("GET", f"{gw.url}/v1/webhooks", token=ADMIN_TOKEN)
    assert status == 200 and {w["id"] for w in listed} == {hook["id"], slack["id"]}
    assert "secret" not in json.dumps(listed) and hook["secret"] not in json.dumps(listed), "the secret is shown once"

    # duplicate_window 0: three like charges fill the cap (the guard is the other key's test).
    key = gw.issue(vendor="stripe", max_usd="300", alert_at=[0.5], run_id="billing-9", duplicate_window=0,
                   allowed_endpoints=["POST /v1/payment_intents", "POST /v1/refunds"])
    assert key["policy"]["alert_at"] == [0.5]
    sc = stripe_client(gw, key["vault_key"])
    pis = []
    for _ in range(3):
        pis.append(sc.v1.payment_intents.create(params={"amount": 10000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa"}))
    # The third charge filled the key; a fourth is refused for the cap, once as an event.
    for _ in range(2):
        with pytest.raises(stripe.StripeError) as e:
            sc.v1.payment_intents.create(params={"amount": 5000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa"})
        assert e.value.http_status == 402
    gw.revoke(key["key_id"])
    # A second run's repeated refund: one duplicate_blocked event however often it repeats.
    other = gw.issue(vendor="stripe", max_usd="300", allowed_endpoints=["POST /v1/payment_intents", "POST /v1/refunds"])
    so = stripe_client(gw, other["vault_key"])
    pi = so.v1.payment_intents.create(params={"amount": 2000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa"})
    refund = {"payment_intent": pi.id, "amount": 500}
    so.v1.refunds.create(params=refund)
    for _ in range(2):
        with pytest.raises(stripe.StripeError) as e:
            so.v1.refunds.create(params=refund)
        assert e.value.http_status == 409

    stored = events(gw)
    kinds = sorted(e["type"] for e in stored)
    assert kinds == ["key.revoked", "request.duplicate_blocked", "spend.cap_reached", "spend.threshold_crossed"], kinds
    # Attempts have been made (and failed: nothing listens); give the worker a moment.
    deadline = time.time() + 10
    while time.time() < deadline and not any(d["attempts"] for e in events(gw) for d in e["deliveries"]):
        time.sleep(0.2)
    assert all(d["state"] == "pending" for e in events(gw) for d in e["deliveries"])
    assert any(r["decision"] == "webhook_retrying" for r in gw.audit(limit=1000))
    gw.proc.stop()

    # The receiver comes up; a new gateway process on the same database delivers the backlog.
    receiver = Receiver(port)
    try:
        gw2 = Gateway(start_gateway(tmp_path, sim.url, config_text=FAST_RETRIES))
        try:
            deadline = time.time() + 30
            while time.time() < deadline and len(receiver.got) < 5:
                time.sleep(0.2)
            time.sleep(3)  # anything sent twice would arrive by now
            main = [(h, b) for p, h, b in receiver.got if p == "/events"]
            slack_posts = [(h, b) for p, h, b in receiver.got if p == "/slack"]
            assert len(main) == 4, [json.loads(b)["type"] for _, b in main]
            assert len(slack_posts) == 1
            verifier = Webhook(hook["secret"])
            seen_ids = set()
            for h, body in main:
                event = verifier.verify(body, h)  # raises unless the signature is right
                assert h["webhook-id"] not in seen_ids
                seen_ids.add(h["webhook-id"])
                assert event["timestamp"].endswith("Z") and "data" in event
            assert seen_ids == {e["id"] for e in stored}, "the ids the gateway listed"
            by_type = {json.loads(b)["type"]: json.loads(b) for _, b in main}
            crossed = by_type["spend.threshold_crossed"]["data"]
            assert (crossed["key_id"], crossed["run_id"], crossed["threshold"], crossed["cap"]) == (key["key_id"], "billing-9", 0.5, "max_usd")
            assert crossed["cap_usd"] == "300.00" and crossed["counted_usd"] == "200.00"
            assert by_type["spend.cap_reached"]["data"]["refused_estimate_usd"] == "50.00"
            assert by_type["request.duplicate_blocked"]["data"]["endpoint"] == "POST /v1/refunds"
            # Another endpoint's secret does not verify these: the signature is per webhook.
            with pytest.raises(WebhookVerificationError):
                Webhook(slack["secret"]).verify(main[0][1], main[0][0])
            h, body = slack_posts[0]
            Webhook(slack["secret"]).verify(body, h)
            text = json.loads(body)["text"]
            assert "reached 50% of its max_usd" in text and key["key_id"] in text, text
            # The audit log has each delivery; the event list says delivered.
            delivered = [r for r in gw2.audit(limit=1000) if r["decision"] == "webhook_delivered"]
            assert len(delivered) == 5
            assert all(d["state"] == "delivered" for e in events(gw2) for d in e["deliveries"])
        finally:
            gw2.proc.stop()
    finally:
        receiver.stop()


def test_webhook_input_errors_name_the_field(gateway):
    for spec, field in [({}, "url"), ({"url": "file:///etc/passwd"}, "url"),
                        ({"url": "http://127.0.0.1:1/x", "events": ["spend.everything"]}, "events"),
                        ({"url": "http://127.0.0.1:1/x", "format": "teams"}, "format")]:
        status, body, _ = http("POST", f"{gateway.url}/v1/webhooks", spec, token=ADMIN_TOKEN)
        assert status == 400 and body["error"]["field"] == field, body
    status, body, _ = http("DELETE", f"{gateway.url}/v1/webhooks/wh_nope", token=ADMIN_TOKEN)
    assert status == 404, body
    hook = create_webhook(gateway, url="http://127.0.0.1:1/x")
    status, _, _ = http("DELETE", f"{gateway.url}/v1/webhooks/{hook['id']}", token=ADMIN_TOKEN)
    assert status == 204
    status, listed, _ = http("GET", f"{gateway.url}/v1/webhooks", token=ADMIN_TOKEN)
    assert listed == []
    status, body, _ = http("POST", f"{gateway.url}/v1/keys", {"vendor": "stripe", "max_usd": "10", "alert_at": [1.5]}, token=ADMIN_TOKEN)
    assert status == 400 and body["error"]["field"] == "alert_at", body
