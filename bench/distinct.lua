-- Each request a distinct action (its own customer id), so the duplicate-action guard, on by
-- default, lets every one through: the benchmark measures the money path with the guard's
-- check and index write included. Ids are unique per run (the start time) and per thread, as
-- runs reuse keys. Defines `distinct_body(base)` for the scripts that load it.
local next_thread = 1
local started = tostring(os.time()) .. tostring(math.random(1000000))
function setup(thread)
  thread:set("thread_id", started .. "_" .. next_thread)
  next_thread = next_thread + 1
end
local n = 0
function distinct_body(base)
  n = n + 1
  return base .. "&customer=cus_bench_" .. tostring(thread_id or 0) .. "_" .. n
end
