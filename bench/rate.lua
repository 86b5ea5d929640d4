-- Fixed moderate rate: every connection waits DELAY_MS between requests, so with C
-- connections the offered load is about C * 1000 / DELAY_MS requests per second.
local method = os.getenv("METHOD") or "GET"
wrk.method = method
if method == "POST" then
  wrk.body = "amount=100&currency=usd&confirm=true&payment_method=pm_card_visa"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("VK") or "none")
local d = tonumber(os.getenv("DELAY_MS") or "10")
function delay() return d end
dofile("bench/result.lua")
