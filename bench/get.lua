-- A pass-through call: GET a customer (costs nothing). p99.9 printed at the end.
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("VK") or "none")
dofile("bench/result.lua")
