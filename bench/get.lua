-- A pass-through call: GET a customer (costs nothing). p99.9 printed at the end.
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("VK") or "none")
done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.0f p50_us=%d p99_us=%d p999_us=%d errors=%d non2xx=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
