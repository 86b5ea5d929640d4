"""Per-call overhead of `Client.request` in embedded mode, against the Rust core.

The same free call (GET /v1/balance through the whole pipeline, forwarded to
`vendorgate sim`) is made in alternating rounds: from Python with `Client.request`, and from
Rust with `vendorgate::client::Handle::request` in a loop on the binding's runtime (the native
`_bench_core` hook, no Python in the loop), on the same gateway and store. Alternating keeps
both sides under the same machine load. Prints microseconds per call for each and the
difference: the binding's overhead.

    python bindings-python/bench/overhead.py [--sim-url URL] [--calls 2000] [--rounds 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "python"))

from simulator import simulator  # noqa: E402

import vendorgate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sim-url", help="a running `vendorgate sim` (default: start one)")
    ap.add_argument("--calls", type=int, default=2000, help="calls per side (default 2000)")
    ap.add_argument("--rounds", type=int, default=10, help="alternating rounds (default 10)")
    args = ap.parse_args()
    per_round = max(1, args.calls // args.rounds)
    with simulator(args.sim_url) as sim, tempfile.TemporaryDirectory() as d:
        gw = vendorgate.Gateway.open(Path(d) / "bench.db")
        key = gw.issue_key("stripe", max_usd=1_000_000, allowed_endpoints=["GET /v1/balance"])
        c = gw.client(key)
        native = gw._n

        def py_round() -> float:
            t = time.perf_counter()
            for _ in range(per_round):
                r = c.request("GET", "/v1/balance")
                assert r.status == 200
            return time.perf_counter() - t

        def rust_round() -> float:
            return native._bench_core(key.vault_key, "stripe", "GET", "/v1/balance", per_round)

        py_round(), rust_round()  # warm up: connection pool, SQLite cache
        py_t, rust_t = [], []
        for _ in range(args.rounds):
            py_t.append(py_round())
            rust_t.append(rust_round())
        n = per_round * args.rounds
        py_us = sum(py_t) * 1e6 / n
        rust_us = sum(rust_t) * 1e6 / n
        py_med = statistics.median(py_t) * 1e6 / per_round
        rust_med = statistics.median(rust_t) * 1e6 / per_round
        print(f"simulator {sim}; {n} calls per side in {args.rounds} alternating rounds")
        print(f"  python Client.request      {py_us:8.1f} us/call (median round {py_med:.1f})")
        print(f"  rust Handle::request       {rust_us:8.1f} us/call (median round {rust_med:.1f})")
        print(f"  binding overhead           {py_us - rust_us:8.1f} us/call (median rounds {py_med - rust_med:.1f})")


if __name__ == "__main__":
    main()
