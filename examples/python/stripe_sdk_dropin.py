"""The official Stripe SDK through vendorgate: change the base URL and the key, nothing else.

An embedded gateway serves its HTTP face in-process (`Gateway.serve()`); the agent's Stripe
client gets the run's vault key instead of the real secret key. Calls within the policy go
through (the simulator sees the real key, never the vault key); a call over the cap raises the
SDK's own error, with the code `vendorgate_spend_cap_exceeded`.

    python examples/python/stripe_sdk_dropin.py                 # starts `vendorgate sim`
    python examples/python/stripe_sdk_dropin.py --sim-url URL
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import stripe

import vendorgate
from simulator import simulator


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sim-url", help="a running `vendorgate sim` (default: start one)")
    args = ap.parse_args()

    with simulator(args.sim_url), tempfile.TemporaryDirectory() as d:
        gw = vendorgate.Gateway.open(Path(d) / "vendorgate.db")
        url = gw.serve()  # http://127.0.0.1:PORT — the vendor routes of the embedded gateway
        print(f"gateway serving at {url}")
        with gw.run("stripe", max_usd=150,
                    allowed_endpoints=["POST /v1/payment_intents", "GET /v1/payment_intents/*"],
                    run_id="sdk-dropin") as key:
            # The only two changes to the agent's code: the key and the base address.
            client = stripe.StripeClient(key.vault_key, base_addresses={"api": url + "/stripe"})

            pi = client.v1.payment_intents.create(params={
                "amount": 10_000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa",
            })
            print(f"created {pi.id}: {pi.status}, ${pi.amount_received / 100:.2f} received")
            print(f"retrieved again: {client.v1.payment_intents.retrieve(pi.id).status}")

            try:
                # For another customer: the same charge again would be refused as a repeat
                # (409 vendorgate_duplicate_action) before the cap is even asked.
                client.v1.payment_intents.create(params={
                    "amount": 10_000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa",
                    "customer": "cus_second",
                })
                print("second $100 charge went through: the cap did NOT hold")
                return 1
            except stripe.StripeError as e:
                print(f"second $100 charge refused: HTTP {e.http_status}, code {e.code}: {e.user_message}")
                if e.code != "vendorgate_spend_cap_exceeded":
                    return 1
            usage = gw.usage(key)
            print(f"spent ${usage.spent_usd} of ${usage.policy.max_usd}; remaining ${usage.remaining_usd}")
        gw.close()
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
