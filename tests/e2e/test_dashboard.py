"""The dashboard at /ui in a real headless Chromium (Debian's, through Selenium): sign in with
the admin token, watch calls made through the gateway arrive in the live log, revoke a key
from the page and see its next call refused with 401, with no console error on the way.
Screenshots of the main views go to docs/screenshots/ (VENDORGATE_SCREENSHOT_DIR to change)."""

import base64
import os
import pathlib
import time

import pytest

from browser import start_chromium
from conftest import ADMIN_TOKEN, ROOT, Gateway, http, start_gateway

SHOTS = pathlib.Path(os.environ.get("VENDORGATE_SCREENSHOT_DIR", ROOT / "docs" / "screenshots"))


PAYMENTS = iter(range(1, 1_000_000))


def pay(gw, vault_key, amount=2500):
    # Each payment for another customer: a distinct action, not a repeat the duplicate guard refuses.
    return http(
        "POST",
        f"{gw.url}/stripe/v1/payment_intents",
        f"amount={amount}&currency=usd&confirm=true&payment_method=pm_card_visa&customer=cus_{next(PAYMENTS)}".encode(),
        headers={"Authorization": f"Bearer {vault_key}", "Content-Type": "application/x-www-form-urlencoded"},
    )


def wait_for(what, fn, timeout=15):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # a stale element while the page re-renders: try again
            last = e
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@pytest.fixture
def dash(tmp_path, sim):
    driver = start_chromium()  # first: a skip or a failure here leaves no gateway running
    p = start_gateway(tmp_path, sim.url)
    try:
        yield Gateway(p), driver
    finally:
        driver.quit()
        p.stop()


def severe_console(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def shot(driver, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def test_dashboard_live_log_and_revoke(dash):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    gw, d = dash
    css = lambda sel: d.find_elements(By.CSS_SELECTOR, sel)  # noqa: E731

    billing = gw.issue(vendor="stripe", max_usd="100", allowed_endpoints=["POST /v1/payment_intents"], expires_in="1h", run_id="run-billing")
    support = gw.issue(vendor="stripe", daily_usd_cap="50", allowed_endpoints=["POST /v1/refunds"], expires_in="2h", run_id="run-support")
    assert pay(gw, billing["vault_key"])[0] == 200  # traffic before the page opens: the backlog

    # The page itself needs no token; every data call does.
    status, body, headers = http("GET", f"{gw.url}/ui")
    assert status == 200 and 'name="token"' in body
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert http("GET", f"{gw.url}/v1/overview")[0] == 401
    assert http("GET", f"{gw.url}/v1/audit/stream")[0] == 401

    d.get(f"{gw.url}/ui")
    token_input = wait_for("the token form", lambda: css('input[name="token"]'))[0]
    # A wrong token is refused with a message, and nothing is kept.
    token_input.send_keys("not-the-token")
    css("#login-form button")[0].click()
    wait_for("the refusal", lambda: "refused" in css("#error")[0].text)
    assert d.execute_script("return sessionStorage.getItem('vendorgate.admin_token')") is None
    # The refused sign-in is the one error the browser may log (reading the log empties it).
    assert [e["message"] for e in severe_console(d)] == [m for m in [f"{gw.url}/v1/overview - Failed to load resource: the server responded with a status of 401 (Unauthorized)"]]

    css('input[name="token"]')[0].send_keys(ADMIN_TOKEN)
    css("#login-form button")[0].click()
    wait_for("the overview", lambda: "$25.00" in css("#overview-cards")[0].text)
    assert d.execute_script("return sessionStorage.getItem('vendorgate.admin_token')") == ADMIN_TOKEN
    wait_for("the top key", lambda: css(f'#top-keys tr[data-key-id="{billing["key_id"]}"]'))
    assert "run-billing" in css("#fastest-runs")[0].text

    # Live log: the backlog row, then rows as calls are made.
    d.get(f"{gw.url}/ui#log")
    wait_for("the stream", lambda: "connected" in css("#live-status")[0].text)
    assert len(css("#log-table tbody tr[data-audit-id]")) == 1
    for _ in range(2):
        assert pay(gw, billing["vault_key"])[0] == 200
    refused = http("POST", f"{gw.url}/stripe/v1/payment_intents", b"amount=100&currency=usd", headers={"Authorization": f"Bearer {support['vault_key']}"})
    assert refused[0] == 403
    wait_for("three live rows", lambda: len(css("#log-table tbody tr[data-audit-id]")) == 4)
    newest = css("#log-table tbody tr[data-audit-id]")[0].text
    assert "endpoint_not_allowed" in newest and support["key_id"] in newest

    # A filter applies to the backlog and to what arrives.
    Select(css("#f-decision")[0]).select_by_value("refused")
    css("#log-form button[type=submit]")[0].click()
    wait_for("the filtered log", lambda: "connected" in css("#live-status")[0].text and len(css("#log-table tbody tr[data-audit-id]")) == 1)
    assert pay(gw, billing["vault_key"])[0] == 200
    assert pay(gw, billing["vault_key"], amount=9900)[0] == 402  # 4 × $25 counted: the cap is reached
    wait_for("the refusal only", lambda: len(css("#log-table tbody tr[data-audit-id]")) == 2)
    assert "spend_cap_exceeded" in css("#log-table tbody tr[data-audit-id]")[0].text
    assert all("forwarded" not in r.text for r in css("#log-table tbody tr[data-audit-id]"))
    shot(d, "live-log")

    # Keys: find the billing key, revoke it from the page (confirming), its next call gets 401.
    d.get(f"{gw.url}/ui#keys")
    row_sel = f'#keys-table tr[data-key-id="{billing["key_id"]}"]'
    wait_for("the key rows", lambda: css(row_sel) and css(f'#keys-table tr[data-key-id="{support["key_id"]}"]'))
    assert "$100.00 / $100.00" in css(row_sel)[0].text
    css(f'{row_sel} button[data-action="revoke"]')[0].click()
    dialog = wait_for("the confirmation", lambda: [x for x in css("#confirm") if x.is_displayed()])[0]
    assert billing["key_id"] in dialog.text and "401" in dialog.text
    shot(d, "keys-revoke")
    # Cancelling leaves the key alone.
    css("#confirm-cancel")[0].click()
    wait_for("the dialog to close", lambda: not css("#confirm")[0].is_displayed())
    assert gw.key(billing["key_id"])["revoked"] is False
    css(f'{row_sel} button[data-action="revoke"]')[0].click()
    wait_for("the confirmation", lambda: css("#confirm")[0].is_displayed())
    css("#confirm-ok")[0].click()
    wait_for("the revoked state", lambda: "revoked" in css(row_sel)[0].text)
    assert gw.key(billing["key_id"])["revoked"] is True
    shot(d, "keys")
    assert gw.key(support["key_id"])["revoked"] is False
    status, body, _ = pay(gw, billing["vault_key"])
    assert status == 401, body
    assert pay(gw, support["vault_key"])[0] == 403  # the other key still works (and is still limited)

    # Keyboard: Enter on a Revoke button opens the confirmation with focus on Cancel, Escape
    # closes it, and nothing is revoked.
    from selenium.webdriver.common.keys import Keys

    other = css(f'#keys-table tr[data-key-id="{support["key_id"]}"] button[data-action="revoke"]')[0]
    other.send_keys(Keys.ENTER)
    wait_for("the confirmation", lambda: css("#confirm")[0].is_displayed())
    assert d.switch_to.active_element.get_attribute("id") == "confirm-cancel"
    d.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait_for("the dialog to close", lambda: not css("#confirm")[0].is_displayed())
    assert gw.key(support["key_id"])["revoked"] is False
    # Every form control has a label a screen reader can read.
    unlabelled = d.execute_script("return [...document.querySelectorAll('input, select')].filter(e => !e.labels.length && !e.getAttribute('aria-label')).map(e => e.id || e.name)")
    assert unlabelled == []

    # Search finds a key by run id; paging is server-side.
    css("#keys-q")[0].send_keys("run-support")
    css("#keys-form button")[0].click()
    wait_for("the search result", lambda: len(css("#keys-table tbody tr[data-key-id]")) == 1 and css(f'#keys-table tr[data-key-id="{support["key_id"]}"]'))

    # One run: its calls, estimate against settled.
    d.get(f"{gw.url}/ui#run/run-billing")
    wait_for("the run", lambda: "Run run-billing" in css("#run-h")[0].text)
    cards = css("#run-cards")[0].text
    assert "Settled\n$100.00" in cards, cards  # four $25 payments settled
    assert len(css("#run-rows tbody tr")) == 6  # 4 forwarded, 1 over the cap, 1 after the revoke
    assert "key_revoked" in css("#run-rows")[0].text
    shot(d, "run")

    d.get(f"{gw.url}/ui#overview")
    wait_for("the overview", lambda: "Refused" in css("#overview-cards")[0].text and "spend_cap_exceeded" in css("#recent-refusals")[0].text)
    shot(d, "overview")

    # The token never went into a URL, and the page logged no error (CSP violations included).
    assert ADMIN_TOKEN not in d.current_url
    assert severe_console(d) == []


def test_dashboard_csv_export(gateway):
    """The CSV has the documented columns, the live log's filters, and defuses formulas an
    agent could plant in a field it controls (its Idempotency-Key)."""
    k = gateway.issue(vendor="stripe", max_usd="100", allowed_endpoints=["POST /v1/payment_intents"], expires_in="1h", run_id="run-csv")
    headers = {"Authorization": f"Bearer {k['vault_key']}", "Content-Type": "application/x-www-form-urlencoded", "Idempotency-Key": "=HYPERLINK(\"http://x\")"}
    body = b"amount=1000&currency=usd&confirm=true&payment_method=pm_card_visa"
    assert http("POST", f"{gateway.url}/stripe/v1/payment_intents", body, headers=headers)[0] == 200
    assert http("POST", f"{gateway.url}/stripe/v1/refunds", b"payment_intent=pi_1", headers={"Authorization": f"Bearer {k['vault_key']}"})[0] == 403
    assert http("GET", f"{gateway.url}/v1/audit.csv")[0] == 401
    status, text, headers = http("GET", f"{gateway.url}/v1/audit.csv?run_id=run-csv", token=ADMIN_TOKEN)
    assert status == 200 and headers["content-type"].startswith("text/csv")
    lines = text.strip().split("\n")
    assert lines[0].startswith("id,time,key_id,run_id,vendor,method,endpoint,decision,status")
    assert len(lines) == 3, lines
    assert "'=HYPERLINK" in lines[1] and ",forwarded," in lines[1] and ",10.00," in lines[1]
    status, text, _ = http("GET", f"{gateway.url}/v1/audit.csv?run_id=run-csv&decision=refused", token=ADMIN_TOKEN)
    assert [l.split(",")[7] for l in text.strip().split("\n")[1:]] == ["endpoint_not_allowed"]


def test_overview_and_stream_show_pending_spend(gateway):
    """An SMS settles as `pending` (Twilio prices it later): the overview lists it under
    pending spend, the stream filtered by money state delivers it and nothing else, and an
    unknown run is a 404 with a message."""
    import json
    import threading
    import urllib.request

    sid = "AC" + "1" * 32
    sms = gateway.issue(vendor="twilio", max_usd="1", allowed_endpoints=["POST /2010-04-01/Accounts/*/Messages.json"], expires_in="1h", run_id="run-sms")
    auth = base64.b64encode(f"{sid}:{sms['vault_key']}".encode()).decode()

    got = []
    req = urllib.request.Request(f"{gateway.url}/v1/audit/stream?money_state=pending", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    resp = urllib.request.urlopen(req, timeout=20)
    assert resp.headers["content-type"].startswith("text/event-stream")

    def read():
        event = {}
        for raw in resp:
            line = raw.decode().rstrip("\n")
            if not line:
                if event.get("event") == "audit":
                    got.append(json.loads(event["data"]))
                    return
                event = {}
            elif not line.startswith(":"):
                k, _, v = line.partition(": ")
                event[k] = v

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.5)  # the stream starts after the newest row at connect time
    # A refusal first (not pending: filtered out), then the SMS.
    denied = http("GET", f"{gateway.url}/twilio/2010-04-01/Accounts/{sid}/Calls.json", headers={"Authorization": f"Basic {auth}"})
    assert denied[0] == 403
    sent = http("POST", f"{gateway.url}/twilio/2010-04-01/Accounts/{sid}/Messages.json", b"To=%2B14155550100&From=%2B14155550199&Body=hi", headers={"Authorization": f"Basic {auth}", "Content-Type": "application/x-www-form-urlencoded"})
    assert sent[0] == 201, sent
    reader.join(timeout=10)
    resp.close()
    assert [(r["decision"], r["money_state"], r["run_id"]) for r in got] == [("forwarded", "pending", "run-sms")]

    status, o, _ = http("GET", f"{gateway.url}/v1/overview", token=ADMIN_TOKEN)
    assert status == 200
    assert o["spend_by_state_usd"]["pending"] == got[0]["cost_usd"] != "0.00"
    assert [r["money_state"] for r in o["unsettled"]] == ["pending"]
    assert o["refusals_by_reason"] == {"endpoint_not_allowed": 1}
    assert [k["key_id"] for k in o["top_keys"]] == [sms["key_id"]]

    status, run, _ = http("GET", f"{gateway.url}/v1/runs/run-sms", token=ADMIN_TOKEN)
    assert status == 200 and run["calls"] == 2 and run["refused"] == 1 and run["by_state_usd"] == {"pending": got[0]["cost_usd"]}
    status, body, _ = http("GET", f"{gateway.url}/v1/runs/no-such-run", token=ADMIN_TOKEN)
    assert status == 404 and "no-such-run" in body["error"]["message"]


def test_dashboard_budgets_and_alerts(dash):
    """The budgets view shows a shared budget against its caps with its member keys; the alerts
    view shows the warning before the hard stop and the refusal at the cap, each with its
    webhook delivery, and never the receiver's secret path."""
    from selenium.webdriver.common.by import By

    from test_webhooks import Receiver, free_port

    gw, d = dash
    css = lambda sel: d.find_elements(By.CSS_SELECTOR, sel)  # noqa: E731
    receiver = Receiver(free_port())
    try:
        url = f"http://127.0.0.1:{receiver.server.server_port}/services/T0/B0/secret-path-xyz"
        status, hook, _ = http("POST", f"{gw.url}/v1/webhooks", {"url": url, "format": "slack"}, token=ADMIN_TOKEN)
        assert status == 201, hook
        status, body, _ = http("POST", f"{gw.url}/v1/budgets", {"name": "team-billing", "max_usd": "100", "alert_at": [0.5]}, token=ADMIN_TOKEN)
        assert status == 201, body
        a = gw.issue(vendor="stripe", max_usd="1000", allowed_endpoints=["POST /v1/payment_intents"], expires_in="1h", run_id="run-a", budgets=["team-billing"])
        b = gw.issue(vendor="stripe", max_usd="1000", allowed_endpoints=["POST /v1/payment_intents"], expires_in="1h", run_id="run-b", budgets=["team-billing"])
        assert pay(gw, a["vault_key"])[0] == 200
        assert pay(gw, b["vault_key"])[0] == 200  # $50.00 of $100.00: the 50 % warning
        status, body, _ = pay(gw, a["vault_key"], amount=6000)  # $50 + $60 > $100: the budget refuses
        assert status == 402 and "team-billing" in body["error"]["message"], body

        d.get(f"{gw.url}/ui#budgets")
        wait_for("the token form", lambda: css('input[name="token"]'))[0].send_keys(ADMIN_TOKEN)
        css("#login-form button")[0].click()
        row = wait_for("the budget row", lambda: css('#budgets-table tr[data-budget="team-billing"]'))[0]
        text = row.text
        assert "$50.00 / $100.00" in text and "50%" in text and "2 keys" in text, text
        row.find_element(By.CSS_SELECTOR, "summary").click()
        members = wait_for("the member keys", lambda: row.find_element(By.CSS_SELECTOR, "details").text)
        assert a["key_id"] in members and b["key_id"] in members, members
        shot(d, "budgets")

        d.get(f"{gw.url}/ui#alerts")

        def delivered():
            css("#alerts-refresh")[0].click()
            rows = css('#events-table tr[data-event-type="spend.threshold_crossed"]')
            return rows and "delivered" in rows[0].text and rows

        warning = wait_for("the delivered warning", delivered)[0].text
        assert "team-billing" in warning and "50% of the run cap reached: $50.00 of $100.00" in warning, warning
        stop = css('#events-table tr[data-event-type="spend.cap_reached"]')
        assert len(stop) == 1 and "team-billing" in stop[0].text and "$60.00" in stop[0].text, [r.text for r in stop]
        hooks = css(f'#webhooks-table tr[data-webhook-id="{hook["id"]}"]')
        assert len(hooks) == 1 and "slack" in hooks[0].text and "active" in hooks[0].text
        assert "secret-path-xyz" not in d.page_source, "the receiver's path can be a secret"
        shot(d, "alerts")
        # The Slack receiver got the warning as a message a person can read.
        assert any(b"team-billing" in body for _, _, body in receiver.got)
        assert severe_console(d) == []
    finally:
        receiver.stop()
