-- A light, steady load: each connection waits BENCH_PACE_MS between
-- requests, so latency is measured without saturating the machine.
local pause = tonumber(os.getenv("BENCH_PACE_MS") or "10")
delay = function() return pause end
