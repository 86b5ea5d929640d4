"""Turn bench/run.sh results into a table with ratios to nginx, and write docs/BENCHMARKS.md."""
import datetime
import os
import platform
import subprocess
import sys


def parse(path):
    rows = {}
    for line in open(path):
        name, _, rest = line.strip().partition(" RESULT ")
        rows[name] = {k: int(v) for k, v in (kv.split("=") for kv in rest.split())}
    return rows


def table(results, rss_idle, rss_1k, revoke_us, after_status, dur, conn):
    r = parse(results)
    out = [f"wrk -t2 -c{conn} -d{dur}s, same machine, same run. Latency in ms.", "",
           "| call | path | req/s | p50 | p99 | p99.9 | errors | vs nginx req/s | vs nginx p99 |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for call, label in (("get", "pass-through GET (free)"), ("post", "money POST (reserve + settle + audit)")):
        base = r.get(f"nginx-{call}")
        for who in ("direct", "nginx", "bare", "vg"):
            x = r.get(f"{who}-{call}")
            if not x:
                continue
            ratio = f"{x['rps'] / base['rps']:.2f}×" if base else "-"
            pratio = f"{x['p99_us'] / base['p99_us']:.2f}×" if base else "-"
            name = {"direct": "direct to upstream", "nginx": "nginx proxy_pass",
                    "bare": "bare axum + reqwest proxy (same stack, no gateway work)", "vg": "vendorgate"}[who]
            out.append(f"| {label} | {name} | {x['rps']} | {x['p50_us']/1000:.2f} | {x['p99_us']/1000:.2f} | {x['p999_us']/1000:.2f} | {x['errors'] + x['non2xx']} | {ratio} | {pratio} |")
    rated = [(c, w) for c in ("get", "post") for w in ("nginx", "vg") if r.get(f"{w}-{c}-rate")]
    if rated:
        out += ["", "At a fixed moderate rate (10 connections, one request per 10 ms each ≈ 1,000 req/s offered):", "",
                "| call | path | req/s | p50 | p99 | p99.9 |", "|---|---|---:|---:|---:|---:|"]
        for c, w in rated:
            x = r[f"{w}-{c}-rate"]
            out.append(f"| {'pass-through GET' if c == 'get' else 'money POST'} | {'nginx proxy_pass' if w == 'nginx' else 'vendorgate'} | {x['rps']} | {x['p50_us']/1000:.2f} | {x['p99_us']/1000:.2f} | {x['p999_us']/1000:.2f} |")
    out += ["", f"- vendorgate RSS idle: {int(rss_idle)/1024:.1f} MiB; with 1,000 concurrent connections: {int(rss_1k)/1024:.1f} MiB",
            f"- revocation under load (another key's money calls running): admin DELETE took {int(revoke_us)/1000:.2f} ms; the next request with the revoked key got HTTP {after_status}"]
    return "\n".join(out) + "\n"


def write_doc(table_path, doc_path):
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
    section = f"\n## Run of {stamp}\n\nMachine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}.\nCommand: `bench/run.sh` (`make bench`).\n\n" + open(table_path).read()
    head = "# Benchmarks\n\nEvery figure here was produced by the command shown with it, on the machine described.\n"
    text = open(doc_path).read() if os.path.exists(doc_path) else head
    marker = "<!-- bench/run.sh appends below -->"
    if marker not in text:
        text += "\n" + marker + "\n"
    open(doc_path, "w").write(text + section)


if __name__ == "__main__":
    if sys.argv[1] == "--write-doc":
        write_doc(sys.argv[2], sys.argv[3])
    else:
        sys.stdout.write(table(*sys.argv[1:8]))
