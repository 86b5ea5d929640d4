"""End to end: the operation catalogue through the `vendorgate` binary and the official SDKs.

Every operation an agent can send is free, priced, refused (400 `vendorgate_cannot_price`) or
a credential (403 `vendorgate_credential`); anything not in the catalogue is refused. These
tests drive newly priced and refused operations with stripe-python, twilio-python and
resend-python, and read the gateway's decisions back from its audit log. What each operation
does with money is written here from the vendors' documentation, not from the catalogue."""

import base64
import urllib.parse
from decimal import Decimal

import pytest
import resend
import stripe
from twilio.base.exceptions import TwilioRestException

from conftest import ANY_SID, Gateway, http, start_gateway, stripe_client, twilio_client, use_resend

# The gateway's default voice pricing (config.rs): a call without TimeLimit is priced as the
# longest call Twilio allows by default (4 hours) at the flat per-minute rate.
CALL_MAX_MINUTES = 240
CALL_MINUTE_USD = Decimal("0.14")



@pytest.fixture
def stripe_module(gateway, monkeypatch):
    """The stripe module's global API (stripe.Topup.create, …) pointed at the gateway."""
    monkeypatch.setattr(stripe, "api_base", gateway.url + "/stripe")
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    monkeypatch.setattr(stripe, "api_key", None)
    return stripe




def stripe_code(err):
    return (err.json_body or {}).get("error", {}).get("code")


def last_row(gw, key_id):
    rows = gw.audit(key_id=key_id, limit=1000)
    assert rows, "no audit row"
    return rows[-1]


def usd(s):
    return Decimal(s)


def seen_paths(seen, needle):
    return [r for r in seen() if needle in r["path"]]


# ---- 1. the policy users write: any method on two paths ----------------------------------


def test_any_method_on_payment_intents_and_invoices_is_priced_free_or_refused(gateway, seen):
    """`allowed_endpoints: ["/v1/payment_intents", "/v1/invoices"]` admits every method on
    those paths. Each call the SDK can make there must be priced (estimate > 0), free because
    it moves no money (a read, an unconfirmed intent, a draft invoice), or refused with
    vendorgate_cannot_price — never forwarded at $0 when it moves money."""
    key = gateway.issue(vendor="stripe", max_usd="500", allowed_endpoints=["/v1/payment_intents", "/v1/invoices"])
    sc = stripe_client(gateway, key["vault_key"])
    kid = key["key_id"]
    card = {"currency": "usd", "payment_method": "pm_card_visa"}
    # (what, call, moves money per Stripe's docs, the outcome Stripe's docs make safe)
    calls = [
        ("PaymentIntent.create confirm=true", lambda: sc.v1.payment_intents.create(params={"amount": 2500, "confirm": True, **card}), True, "priced"),
        ("PaymentIntent.create confirm=true manual capture", lambda: sc.v1.payment_intents.create(params={"amount": 1200, "confirm": True, "capture_method": "manual", **card}), True, "priced"),
        ("PaymentIntent.create unconfirmed", lambda: sc.v1.payment_intents.create(params={"amount": 9900, **card}), False, "free"),
        ("PaymentIntent.create confirm=false", lambda: sc.v1.payment_intents.create(params={"amount": 9900, "confirm": False, **card}), False, "free"),
        ("PaymentIntent.list", lambda: sc.v1.payment_intents.list(params={"limit": 3}), False, "free"),
        ("Invoice.create auto_advance=false", lambda: sc.v1.invoices.create(params={"customer": "cus_e2e", "auto_advance": False}), False, "free"),
        # Without auto_advance=false the request does not say the invoice stays a draft: on
        # older API versions (and with auto_advance=true) Stripe finalizes and charges it by
        # itself, for an amount the request does not carry. Refused.
        ("Invoice.create", lambda: sc.v1.invoices.create(params={"customer": "cus_e2e"}), True, "refused"),
        ("Invoice.create auto_advance=true", lambda: sc.v1.invoices.create(params={"customer": "cus_e2e", "auto_advance": True}), True, "refused"),
        ("Invoice.create auto_advance=true pending items", lambda: sc.v1.invoices.create(params={"customer": "cus_e2e", "auto_advance": True, "pending_invoice_items_behavior": "include"}), True, "refused"),
        ("Invoice.list", lambda: sc.v1.invoices.list(), False, "free"),
        # Methods the SDK has no wrapper for on these paths: not in the catalogue.
        ("DELETE /v1/payment_intents", lambda: sc.raw_request("delete", "/v1/payment_intents"), None, "refused"),
        ("DELETE /v1/invoices", lambda: sc.raw_request("delete", "/v1/invoices"), None, "refused"),
    ]
    priced_total = Decimal(0)
    for what, call, moves_money, expected in calls:
        before = len(gateway.audit(key_id=kid, limit=1000))
        seen_before = len(seen())
        try:
            result = call()
            err = None
        except stripe.StripeError as e:
            result, err = None, e
        rows = gateway.audit(key_id=kid, limit=1000)
        assert len(rows) == before + 1, what
        row = rows[-1]
        estimate = usd(row["estimate_usd"])
        if err is None:
            assert row["decision"] == "forwarded", (what, row)
            if moves_money:
                assert estimate > 0, f"{what} moves money but was forwarded at $0: {row}"
            else:
                # A $0 call must be one that moves nothing: a read or a create that charges nothing.
                assert moves_money is False, (what, row)
            outcome = "priced" if estimate > 0 else "free"
            priced_total += estimate
            assert result is not None
        else:
            assert err.http_status == 400 and stripe_code(err) == "vendorgate_cannot_price", (what, err.http_status, err.json_body)
            assert row["decision"] != "forwarded" and row["status"] == 400, (what, row)
            assert len(seen()) == seen_before, f"{what} was refused but reached the vendor"
            outcome = "refused"
        assert outcome == expected, (what, outcome, row)

    # The confirmed intents are the money: $25 moved and $12 held, and nothing else counted.
    assert priced_total == Decimal("37.00")
    usage = gateway.key(kid)
    assert usd(usage["spent_usd"]) + usd(usage["pending_usd"]) == priced_total, usage
    # The refusals name the operation and say what to do.
    rows = gateway.audit(key_id=kid, limit=1000)
    refused = [r for r in rows if r["status"] == 400]
    assert len(refused) == 5
    msgs = " ".join(r.get("message") or "" for r in refused)
    assert "auto_advance" in msgs and "DELETE /v1/payment_intents is not an operation" in msgs


# ---- 2. Stripe --------------------------------------------------------------------------


def test_topup_is_priced_and_counts_against_the_cap(gateway, seen, stripe_module):
    # The second top-up repeats the first to meet the cap: the duplicate guard is off here.
    key = gateway.issue(vendor="stripe", max_usd="100", allowed_endpoints=["POST /v1/topups"], duplicate_window=0)
    vk = key["vault_key"]
    tu = stripe_module.Topup.create(amount=6000, currency="usd", description="float", api_key=vk)
    assert tu.object == "topup" and tu.status == "pending" and tu.amount == 6000
    row = last_row(gateway, key["key_id"])
    assert row["decision"] == "forwarded" and row["estimate_usd"] == "60.00", row
    usage = gateway.key(key["key_id"])
    # A pending top-up counts: the bank pull is under way.
    assert usd(usage["spent_usd"]) + usd(usage["pending_usd"]) == Decimal("60.00"), usage
    assert usage["remaining_usd"] == "40.00", usage
    with pytest.raises(stripe.CardError) as e:
        stripe_module.Topup.create(amount=6000, currency="usd", api_key=vk)
    assert e.value.http_status == 402 and stripe_code(e.value) == "vendorgate_spend_cap_exceeded"
    # A top-up in another currency is converted, and fits what is left.
    stripe_module.Topup.create(amount=3000, currency="eur", api_key=vk)
    assert usd(last_row(gateway, key["key_id"])["estimate_usd"]) > Decimal("30.00")
    assert len(seen_paths(seen, "/v1/topups")) == 2, "the refused top-up never reached Stripe"
    # Without an amount the call cannot be priced (Stripe requires it anyway).
    with pytest.raises(stripe.InvalidRequestError) as e:
        stripe_client(gateway, vk).raw_request("post", "/v1/topups", currency="usd")
    assert stripe_code(e.value) == "vendorgate_cannot_price"
    assert len(seen_paths(seen, "/v1/topups")) == 2


def test_invoice_item_is_priced_and_item_by_price_id_refused(gateway, seen):
    key = gateway.issue(vendor="stripe", max_usd="100", allowed_endpoints=["POST /v1/invoiceitems"])
    sc = stripe_client(gateway, key["vault_key"])
    item = sc.v1.invoice_items.create(params={"customer": "cus_e2e", "amount": 1500, "currency": "usd"})
    assert item.object == "invoiceitem" and item.amount == 1500
    assert last_row(gateway, key["key_id"])["estimate_usd"] == "15.00"
    sc.v1.invoice_items.create(params={"customer": "cus_e2e", "unit_amount": 250, "quantity": 4, "currency": "usd"})
    assert last_row(gateway, key["key_id"])["estimate_usd"] == "10.00"
    usage = gateway.key(key["key_id"])
    assert usd(usage["spent_usd"]) + usd(usage["pending_usd"]) == Decimal("25.00"), usage
    n = len(seen_paths(seen, "/v1/invoiceitems"))
    with pytest.raises(stripe.InvalidRequestError) as e:
        sc.v1.invoice_items.create(params={"customer": "cus_e2e", "pricing": {"price": "price_123"}})
    assert stripe_code(e.value) == "vendorgate_cannot_price" and "price id" in str(e.value)
    assert len(seen_paths(seen, "/v1/invoiceitems")) == n


def test_invoice_draft_item_finalize_and_pay_are_counted(gateway, seen):
    """A draft (auto_advance=false) is free; the item put on it is priced; finalize and pay
    are priced from the invoice amount the gateway remembered. The customer pays $15: the
    gateway must count at least that, and nothing may be forwarded at $0 that charges."""
    key = gateway.issue(vendor="stripe", max_usd="100", allowed_endpoints=["POST /v1/invoices", "POST /v1/invoiceitems", "GET /v1/invoices/*", "POST /v1/invoices/*/finalize", "POST /v1/invoices/*/pay"])
    sc = stripe_client(gateway, key["vault_key"])
    kid = key["key_id"]
    inv = sc.v1.invoices.create(params={"customer": "cus_e2e", "auto_advance": False})
    assert inv.status == "draft" and last_row(gateway, kid)["estimate_usd"] == "0.00"
    sc.v1.invoice_items.create(params={"customer": "cus_e2e", "invoice": inv.id, "amount": 1500, "currency": "usd"})
    assert last_row(gateway, kid)["estimate_usd"] == "15.00"
    assert sc.v1.invoices.retrieve(inv.id).amount_due == 1500
    fin = sc.v1.invoices.finalize_invoice(inv.id)
    assert fin.status == "open"
    row = last_row(gateway, kid)
    assert row["decision"] == "forwarded" and usd(row["estimate_usd"]) == Decimal("15.00"), row
    paid = sc.v1.invoices.pay(inv.id)
    assert paid.status == "paid" and paid.amount_paid == 1500
    row = last_row(gateway, kid)
    assert usd(row["estimate_usd"]) == Decimal("15.00"), row
    usage = gateway.key(kid)
    counted = usd(usage["spent_usd"]) + usd(usage["pending_usd"])
    assert counted >= Decimal("15.00"), usage
    # Finalizing an invoice the gateway never saw cannot be priced.
    with pytest.raises(stripe.InvalidRequestError) as e:
        sc.v1.invoices.finalize_invoice("in_unseen")
    assert stripe_code(e.value) == "vendorgate_cannot_price"
    assert not seen_paths(seen, "in_unseen")


def test_invoice_item_money_is_counted_once_when_its_invoice_is_paid(gateway):
    key = gateway.issue(vendor="stripe", max_usd="20", allowed_endpoints=["POST /v1/invoices", "POST /v1/invoiceitems", "GET /v1/invoices/*", "POST /v1/invoices/*/finalize", "POST /v1/invoices/*/pay"])
    sc = stripe_client(gateway, key["vault_key"])
    inv = sc.v1.invoices.create(params={"customer": "cus_e2e", "auto_advance": False})
    sc.v1.invoice_items.create(params={"customer": "cus_e2e", "invoice": inv.id, "amount": 1500, "currency": "usd"})
    sc.v1.invoices.retrieve(inv.id)
    sc.v1.invoices.finalize_invoice(inv.id)
    assert sc.v1.invoices.pay(inv.id).amount_paid == 1500
    usage = gateway.key(key["key_id"])
    assert usd(usage["spent_usd"]) + usd(usage["pending_usd"]) == Decimal("15.00"), usage


def test_subscription_create_is_refused(gateway, seen):
    key = gateway.issue(vendor="stripe", max_usd="100", allowed_endpoints=["/**"])
    sc = stripe_client(gateway, key["vault_key"])
    with pytest.raises(stripe.InvalidRequestError) as e:
        sc.v1.subscriptions.create(params={"customer": "cus_e2e", "items": [{"price": "price_monthly"}]})
    assert e.value.http_status == 400 and stripe_code(e.value) == "vendorgate_cannot_price"
    assert "POST /v1/subscriptions" in str(e.value) and "first invoice" in str(e.value)
    assert not seen_paths(seen, "/v1/subscriptions")
    row = last_row(gateway, key["key_id"])
    assert row["endpoint"] == "/v1/subscriptions" and row["status"] == 400 and row["estimate_usd"] == "0.00"


def test_unknown_operation_is_refused(gateway, seen):
    key = gateway.issue(vendor="stripe", max_usd="100", allowed_endpoints=["/**"])
    vk = key["vault_key"]
    sc = stripe_client(gateway, vk)
    with pytest.raises(stripe.InvalidRequestError) as e:
        sc.raw_request("post", "/v1/widgets", amount=100, currency="usd")
    assert stripe_code(e.value) == "vendorgate_cannot_price"
    assert "POST /v1/widgets is not an operation" in str(e.value) and "pricing.override" in str(e.value)
    # Plain HTTP, and a known path with an unknown method or sub-resource.
    for method, path in [("POST", "/v1/widgets"), ("PUT", "/v1/charges"), ("POST", "/v1/charges/ch_1/explode"), ("GET", "/v1/widgets/w_1")]:
        status, body, _ = http(method, f"{gateway.url}{path}", b"amount=100&currency=usd", headers={"Authorization": f"Bearer {vk}", "Content-Type": "application/x-www-form-urlencoded"})
        assert status == 400 and body["error"]["code"] == "vendorgate_cannot_price", (method, path, body)
    assert not seen_paths(seen, "/v1/widgets") and not seen_paths(seen, "/v1/charges")


def test_ephemeral_key_is_a_credential_even_when_everything_is_allowed(gateway, seen, stripe_module):
    key = gateway.issue(vendor="stripe", max_usd="100", allowed_endpoints=["/**"])
    with pytest.raises(stripe.PermissionError) as e:
        stripe_module.EphemeralKey.create(customer="cus_e2e", stripe_version="2024-06-20", api_key=key["vault_key"])
    assert e.value.http_status == 403 and stripe_code(e.value) == "vendorgate_credential"
    assert "ephemeral" in str(e.value)
    # Other credential-bearing operations too.
    sc = stripe_client(gateway, key["vault_key"])
    with pytest.raises(stripe.PermissionError) as e:
        sc.v1.account_links.create(params={"account": "acct_1", "type": "account_onboarding", "refresh_url": "https://x.test/r", "return_url": "https://x.test/d"})
    assert stripe_code(e.value) == "vendorgate_credential"
    assert not seen_paths(seen, "/v1/ephemeral_keys") and not seen_paths(seen, "/v1/account_links")


# ---- 3. Twilio --------------------------------------------------------------------------

CALLS = "POST /2010-04-01/Accounts/*/Calls.json"


def test_call_without_time_limit_is_priced_at_the_longest_call(gateway, seen):
    key = gateway.issue(vendor="twilio", max_usd="50", allowed_endpoints=[CALLS, "GET /2010-04-01/Accounts/*/Calls/*"])
    tc = twilio_client(gateway, key["vault_key"])
    kid = key["key_id"]
    call = tc.calls.create(to="+14155550100", from_="+14155550199", url="https://example.com/twiml")
    assert call.status == "queued" and call.sid.startswith("CA")
    longest = CALL_MAX_MINUTES * CALL_MINUTE_USD
    row = last_row(gateway, kid)
    assert row["decision"] == "forwarded" and usd(row["estimate_usd"]) == longest, row
    assert usd(gateway.key(kid)["pending_usd"]) == longest
    # TimeLimit bounds the price: 90 s is two started minutes.
    tc.calls.create(to="+14155550100", from_="+14155550199", url="https://example.com/twiml", time_limit=90)
    assert usd(last_row(gateway, kid)["estimate_usd"]) == 2 * CALL_MINUTE_USD
    # A read that brings Twilio's price replaces the estimate.
    ended = tc.calls(call.sid).fetch()
    assert ended.status == "completed" and ended.price == "-0.01400"
    usage = gateway.key(kid)
    assert usd(usage["spent_usd"]) + usd(usage["pending_usd"]) == Decimal("0.014") + 2 * CALL_MINUTE_USD, usage
    assert len(seen_paths(seen, "/Calls.json")) == 2


def test_call_without_time_limit_is_refused_under_a_small_cap(gateway, seen):
    key = gateway.issue(vendor="twilio", max_usd="10", allowed_endpoints=[CALLS])
    tc = twilio_client(gateway, key["vault_key"])
    with pytest.raises(TwilioRestException) as e:
        tc.calls.create(to="+14155550100", from_="+14155550199", url="https://example.com/twiml")
    assert e.value.status == 402 and e.value.code == "vendorgate_spend_cap_exceeded"
    assert not seen_paths(seen, "/Calls.json")
    assert usd(last_row(gateway, key["key_id"])["estimate_usd"]) == CALL_MAX_MINUTES * CALL_MINUTE_USD
    # The same call with a TimeLimit fits.
    assert tc.calls.create(to="+14155550100", from_="+14155550199", url="https://example.com/twiml", time_limit=600).status == "queued"
    assert len(seen_paths(seen, "/Calls.json")) == 1


def test_twilio_api_key_create_is_a_credential(gateway, seen):
    key = gateway.issue(vendor="twilio", max_usd="10", allowed_endpoints=["/**"])
    tc = twilio_client(gateway, key["vault_key"])
    with pytest.raises(TwilioRestException) as e:
        tc.api.v2010.account.new_keys.create(friendly_name="agent key")
    assert e.value.status == 403 and e.value.code == "vendorgate_credential"
    assert not seen_paths(seen, "/Keys")


def basic(sid, token):
    return "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()


def test_xml_and_bare_forms_of_priced_twilio_operations_are_refused(gateway, seen):
    key = gateway.issue(vendor="twilio", max_usd="10", allowed_endpoints=["/**"])
    h = {"Authorization": basic(ANY_SID, key["vault_key"]), "Content-Type": "application/x-www-form-urlencoded"}
    form = urllib.parse.urlencode({"To": "+14155550100", "From": "+14155550199", "Body": "hi"}).encode()
    base = f"{gateway.url}/twilio/2010-04-01/Accounts/{ANY_SID}"
    for path in ["/Messages.xml", "/Messages", "/Calls.xml", "/Calls"]:
        status, body, _ = http("POST", base + path, form + b"&Url=https%3A%2F%2Fexample.com", headers=h)
        assert status == 400 and body["code"] == "vendorgate_cannot_price", (path, body)
        assert "JSON answers only" in body["message"], body
    assert not [r for r in seen() if r["vendor"] == "twilio"], "refused forms never reach Twilio"
    # The JSON form of the same operation is priced and forwarded.
    status, body, _ = http("POST", base + "/Messages.json", form, headers=h)
    assert status == 201, body
    assert last_row(gateway, key["key_id"])["estimate_usd"] == "0.0083"
    # A free operation's other forms stay free (a read of the account's messages).
    status, _, _ = http("GET", base + "/Messages.xml", headers={"Authorization": h["Authorization"]})
    assert status != 400 and last_row(gateway, key["key_id"])["decision"] == "forwarded"


# ---- 4. Resend --------------------------------------------------------------------------


def test_resend_broadcast_send_refused_and_api_key_create_is_a_credential(gateway, seen):
    key = gateway.issue(vendor="resend", max_usd="1", allowed_endpoints=["/**"])
    use_resend(gateway, key["vault_key"])
    draft = {"segment_id": "78261eea-8f8b-4381-83c6-79fa7120f1cf", "from": "news@example.com", "subject": "June", "html": "<p>hi</p>"}
    created = resend.Broadcasts.create(draft)
    assert created["id"]
    row = last_row(gateway, key["key_id"])
    assert row["decision"] == "forwarded" and row["estimate_usd"] == "0.00", row
    with pytest.raises(resend.exceptions.ResendError) as e:
        resend.Broadcasts.send({"broadcast_id": created["id"]})
    assert e.value.code == 400 and e.value.error_type == "vendorgate_cannot_price", e.value.__dict__
    assert "/emails/batch" in str(e.value)
    with pytest.raises(resend.exceptions.ResendError) as e:
        resend.Broadcasts.create({**draft, "send": True})
    assert e.value.code == 400 and e.value.error_type == "vendorgate_cannot_price", e.value.__dict__
    with pytest.raises(resend.exceptions.ResendError) as e:
        resend.ApiKeys.create({"name": "agent"})
    assert e.value.code == 403 and e.value.error_type == "vendorgate_credential", e.value.__dict__
    rows = seen()
    assert not [r for r in rows if "/send" in r["path"] or "/api-keys" in r["path"]]
    assert len([r for r in rows if r["path"] == "/broadcasts"]) == 1
    assert gateway.key(key["key_id"])["spent_usd"] == "0.00"


# ---- 5. operator overrides --------------------------------------------------------------

OVERRIDES = """
[[pricing.override]]
vendor = "stripe"
operation = "POST /v1/widgets/{id}"
price_usd = "0.50"

[[pricing.override]]
vendor = "stripe"
operation = "POST /v1/gadgets"
free = true

[[pricing.override]]
vendor = "stripe"
operation = "POST /v1/ephemeral_keys"
free = true
"""


@pytest.fixture
def override_gateway(tmp_path, sim):
    p = start_gateway(tmp_path, sim.url, config_text=OVERRIDES, name="override")
    yield Gateway(p)
    p.stop()


def test_operator_override_prices_an_unknown_operation(override_gateway, seen):
    gw = override_gateway
    key = gw.issue(vendor="stripe", max_usd="1", allowed_endpoints=["/v1/widgets/**", "POST /v1/widgets", "POST /v1/gadgets", "POST /v1/ephemeral_keys"])
    kid = key["key_id"]
    sc = stripe_client(gw, key["vault_key"])
    # The simulator does not know widgets: it answers 404, which releases the reservation, so
    # three calls at $0.50 fit a $1 cap.
    for i in range(3):
        with pytest.raises(stripe.InvalidRequestError) as e:
            sc.raw_request("post", f"/v1/widgets/w_{i}", colour="blue")
        assert e.value.http_status == 404 and "Unrecognized request URL" in str(e.value)
        row = last_row(gw, kid)
        assert row["decision"] == "forwarded" and row["upstream_status"] == 404, row
        assert row["estimate_usd"] == "0.50" and row["cost_usd"] == "0.00", row
        assert "priced at $0.50 by operator override POST /v1/widgets/{id}" in row["message"], row
    assert len(seen_paths(seen, "/v1/widgets/w_")) == 3
    usage = gw.key(kid)
    assert usage["spent_usd"] == "0.00" and usage["pending_usd"] == "0.00" and usage["remaining_usd"] == "1.00", usage
    # The override is for /v1/widgets/{id} only: the bare path is still unknown.
    with pytest.raises(stripe.InvalidRequestError) as e:
        sc.raw_request("post", "/v1/widgets", colour="blue")
    assert stripe_code(e.value) == "vendorgate_cannot_price"
    # A declared-free operation is forwarded at $0 with the override named.
    with pytest.raises(stripe.InvalidRequestError):
        sc.raw_request("post", "/v1/gadgets", size="s")
    row = last_row(gw, kid)
    assert row["decision"] == "forwarded" and row["estimate_usd"] == "0.00"
    assert "declared free by operator override POST /v1/gadgets" in row["message"], row
    # No override makes a credential free.
    with pytest.raises(stripe.PermissionError) as e:
        sc.raw_request("post", "/v1/ephemeral_keys", customer="cus_e2e")
    assert stripe_code(e.value) == "vendorgate_credential"
    assert not seen_paths(seen, "/v1/ephemeral_keys") and not [r for r in seen() if r["path"] == "/v1/widgets"]


def test_operator_override_price_counts_against_the_cap_when_the_vendor_accepts(override_gateway, seen):
    """The fixed price is what is reserved: a 2xx keeps it (the gateway cannot read a widget)."""
    gw = override_gateway
    # The same widget call three times, to meet the cap: the duplicate guard is off here.
    key = gw.issue(vendor="stripe", max_usd="1", allowed_endpoints=["POST /v1/widgets/*"], duplicate_window=0)
    h = {"Authorization": f"Bearer {key['vault_key']}", "Content-Type": "application/x-www-form-urlencoded", "X-Sim-Fault": "500"}
    # A 5xx answer proves nothing: the $0.50 stays counted, so the third call is over the cap.
    for _ in range(2):
        status, _, _ = http("POST", f"{gw.url}/v1/widgets/w_1", b"colour=red", headers=h)
        assert status == 500
    status, body, _ = http("POST", f"{gw.url}/v1/widgets/w_1", b"colour=red", headers=h)
    assert status == 402 and body["error"]["code"] == "vendorgate_spend_cap_exceeded", body
    assert len(seen_paths(seen, "/v1/widgets/w_1")) == 2
    assert gw.key(key["key_id"])["remaining_usd"] == "0.00"
