-- A money call: confirmed $1 PaymentIntent, each for another customer (a distinct action:
-- see distinct.lua). p99.9 printed at the end.
dofile("bench/distinct.lua")
local body = "amount=100&currency=usd&confirm=true&payment_method=pm_card_visa"
local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Authorization"] = "Bearer " .. (os.getenv("VK") or "none"),
}
request = function()
  return wrk.format("POST", nil, headers, distinct_body(body))
end
dofile("bench/result.lua")
