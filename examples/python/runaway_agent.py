"""A billing agent with a retry bug, stopped by the gate.

The agent is asked to charge a customer $100 once. It misreads every answer as a failure and
retries, 200 times. Without a gate that is $20,000 of charges; with vendorgate the second
charge is the same action as the first (only its description differs), so the duplicate guard
refuses it and every retry after it before they reach Stripe; the run's $500 cap would have
stopped the sixth. The audit log shows what happened.

    python examples/python/runaway_agent.py                 # starts `vendorgate sim` itself
    python examples/python/runaway_agent.py --sim-url URL   # against a running simulator

Exit status 0 when the cap held exactly.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from decimal import Decimal
from pathlib import Path

import vendorgate
from simulator import simulator


def billing_agent(client: vendorgate.Client, attempts: int) -> Counter:
    """The buggy agent: 'retries' a $100 charge after every answer, success or not."""
    outcomes: Counter = Counter()
    for attempt in range(1, attempts + 1):
        try:
            r = client.request(
                "POST", "/v1/payment_intents",
                form={"amount": 10_000, "currency": "usd", "confirm": True,
                      "payment_method": "pm_card_visa", "description": f"invoice 1042, try {attempt}"},
            )
            outcomes[f"charged (HTTP {r.status})"] += 1
        except vendorgate.SpendCapExceeded as e:
            if outcomes["refused: spend cap"] == 0:
                print(f"  attempt {attempt}: refused by the gate: {e.message}")
            outcomes["refused: spend cap"] += 1
        except vendorgate.DuplicateRequest as e:
            if outcomes["refused: the same charge again"] == 0:
                print(f"  attempt {attempt}: refused by the gate: {e.message}")
            outcomes["refused: the same charge again"] += 1
        except vendorgate.Denied as e:
            outcomes[f"refused: {e.code}"] += 1
    return outcomes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sim-url", help="a running `vendorgate sim` (default: start one)")
    ap.add_argument("--cap", default="500", help="the run's max_usd (default 500)")
    ap.add_argument("--attempts", type=int, default=200)
    args = ap.parse_args()

    with simulator(args.sim_url) as sim, tempfile.TemporaryDirectory() as d:
        print(f"vendor simulator: {sim}")
        gw = vendorgate.Gateway.open(Path(d) / "vendorgate.db")
        with gw.run("stripe", max_usd=args.cap, allowed_endpoints=["POST /v1/payment_intents"],
                    run_id="billing-agent-run-1", expires_in="15m") as key:
            print(f"issued {key!r} with max_usd=${key.policy.max_usd}")
            outcomes = billing_agent(gw.client(key), args.attempts)
            usage = gw.usage(key)
        print(f"\nthe agent tried {args.attempts} charges of $100:")
        for what, n in sorted(outcomes.items()):
            print(f"  {n:4d} × {what}")
        print(f"spent ${usage.spent_usd} of a ${usage.policy.max_usd} cap; "
              f"without the gate: ${Decimal(100) * args.attempts}")
        print(f"key revoked at the end of the run: {gw.usage(key).revoked}")

        rows = gw.audit(run_id="billing-agent-run-1")
        print("\naudit log (first 7 rows):")
        print(f"  {'decision':<22} {'status':>6} {'estimate':>10} {'cost':>10}")
        for row in rows[:7]:
            print(f"  {row['decision']:<22} {row['status']:>6} {row['estimate_usd']:>10} {row['cost_usd']:>10}")
        decisions = Counter(r["decision"] for r in rows)
        print(f"  … {len(rows)} rows: {dict(decisions)}")

        cap = Decimal(args.cap)
        held = usage.spent_usd <= cap and usage.total_usd <= cap
        return 0 if held and gw.usage(key).revoked else 1


if __name__ == "__main__":
    raise SystemExit(main())
