-- Shared by the wrk scripts: print one RESULT line (throughput, p50/p99/p99.9 in µs, errors)
-- for bench/run.sh to parse. Loaded with dofile from the repository root.
done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.0f p50_us=%d p99_us=%d p999_us=%d errors=%d non2xx=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
