-- Money calls spread over many keys (one agent run each): VKS holds the vault keys,
-- separated by spaces; each request takes the next one, for another customer (a distinct
-- action: see distinct.lua).
dofile("bench/distinct.lua")
local keys = {}
for k in string.gmatch(os.getenv("VKS") or "none", "%S+") do keys[#keys + 1] = k end
local i = 0
local body = "amount=100&currency=usd&confirm=true&payment_method=pm_card_visa"
request = function()
  i = i + 1
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "Bearer " .. keys[(i % #keys) + 1],
  }, distinct_body(body))
end
dofile("bench/result.lua")
