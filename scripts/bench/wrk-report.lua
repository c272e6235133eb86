-- Appended to every scenario's wrk script: one JSON line that bench.py
-- reads (latencies in microseconds; wrk counts status >= 400 as errors).
function done(summary, latency, requests)
  -- A scenario's own summary (wrk-attack.lua's status counts), if any.
  if extra_done then extra_done(summary, latency, requests) end
  local e = summary.errors
  io.write(string.format(
    '\nBENCH_JSON {"requests":%d,"duration_us":%d,"non_2xx":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
