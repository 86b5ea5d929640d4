-- A money call: confirmed $1 PaymentIntent. p99.9 printed at the end.
wrk.method = "POST"
wrk.body = "amount=100&currency=usd&confirm=true&payment_method=pm_card_visa"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("VK") or "none")
dofile("bench/result.lua")
