-- Each request a distinct action (its own customer id), so the duplicate-action guard, on by
-- default, lets every one through: the benchmark measures the money path with the guard's
-- check and index write included. Defines `distinct_body(base)` for the scripts that load it.
local next_thread = 1
function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
end
local n = 0
function distinct_body(base)
  n = n + 1
  return base .. "&customer=cus_bench_" .. tostring(thread_id or 0) .. "_" .. n
end
