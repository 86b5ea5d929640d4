"""Dashboard at scale: page weight, and the keys view with N keys in the store, timed in a real
headless Chromium (docs/BENCHMARKS.md, "Dashboard").

    python bench/dashboard.py --bin target/release/vendorgate \
        --seed-bin target/release/examples/seed_keys --keys 100000

Seeds a fresh SQLite store through the gateway's own issue path (the seed_keys example;
every 10th key revoked), starts `vendorgate serve` on it, then reports:
- the bytes of the page (HTML + JS + CSS, as served and gzipped);
- the admin API: the first page of keys, a page 20 pages deep (cursor), a run-id search,
  and the old unpaged list (1000 keys) for comparison, each the median of several calls;
- in Chromium, from navigation start to the keys table first shown with data (a
  `performance.mark` the page sets), median of several cold loads.
"""

import argparse
import gzip
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))
from browser import start_chromium  # noqa: E402

TOKEN = "bench-admin-token"


def get(url, token=TOKEN):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.read(), dict(r.headers)


def timed(fn, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--seed-bin", required=True)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="vg-dash-"))
    db = tmp / "keys.db"
    t = time.perf_counter()
    subprocess.run([a.seed_bin, str(db), str(a.keys)], check=True)
    seed_s = time.perf_counter() - t

    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "TWILIO_", "RESEND_", "VENDORGATE_"))}
    env["VENDORGATE_ADMIN_TOKEN"] = TOKEN
    p = subprocess.Popen([a.bin, "serve", "--listen", "127.0.0.1:0", "--db", str(db)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    line = p.stdout.readline().strip()
    url = line.rsplit(" ", 1)[-1]
    try:
        assets = {path: get(url + path, token=None)[0] for path in ["/ui", "/ui/app.js", "/ui/app.css"]}
        raw = sum(len(b) for b in assets.values())
        gz = sum(len(gzip.compress(b, 9)) for b in assets.values())

        first = timed(lambda: get(f"{url}/v1/keys?q=&limit=50"), a.runs)
        cursor = None
        for _ in range(20):
            body, headers = get(f"{url}/v1/keys?q=&limit=50" + (f"&cursor={cursor}" if cursor else ""))
            cursor = headers.get("vendorgate-next-cursor") or headers.get("Vendorgate-Next-Cursor")
        deep = timed(lambda: get(f"{url}/v1/keys?q=&limit=50&cursor={cursor}"), a.runs)
        search = timed(lambda: get(f"{url}/v1/keys?q=seed-run-4242&limit=50"), a.runs)
        unpaged = timed(lambda: get(f"{url}/v1/keys"), max(3, a.runs // 2))

        d = start_chromium(1366, 900)
        renders, fcps = [], []
        try:
            d.get(f"{url}/ui")
            d.execute_script("sessionStorage.setItem('vendorgate.admin_token', arguments[0])", TOKEN)
            for _ in range(a.runs):
                d.get("about:blank")
                d.get(f"{url}/ui#keys")
                deadline = time.monotonic() + 60
                mark = []
                while not mark and time.monotonic() < deadline:
                    mark = d.execute_script("return performance.getEntriesByName('keys-rendered').map(e => e.startTime)")
                    time.sleep(0.02)
                assert mark, "the keys view never rendered"
                rows = d.execute_script("return document.querySelectorAll('#keys-table tbody tr[data-key-id]').length")
                assert rows == 50, rows
                renders.append(mark[0])
                fcps.append(d.execute_script("return (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || 0"))
            errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
            assert not errors, errors
        finally:
            d.quit()
    finally:
        p.terminate()
        p.wait(timeout=10)

    print(f"keys in the store: {a.keys} (seeded in {seed_s:.1f} s)")
    print(f"page weight: {raw} bytes (HTML {len(assets['/ui'])} + JS {len(assets['/ui/app.js'])} + CSS {len(assets['/ui/app.css'])}), {gz} bytes gzipped")
    print(f"GET /v1/keys first page (50): {first:.1f} ms median of {a.runs}")
    print(f"GET /v1/keys 21st page (cursor): {deep:.1f} ms")
    print(f"GET /v1/keys?q=<run id>: {search:.1f} ms")
    print(f"GET /v1/keys unpaged (1000 with usage): {unpaged:.1f} ms")
    print(f"Chromium: keys view shown with data at {statistics.median(renders):.0f} ms after navigation start (median of {a.runs}; min {min(renders):.0f}, max {max(renders):.0f}); first contentful paint {statistics.median(fcps):.0f} ms")


if __name__ == "__main__":
    main()
