-- wrk script for bench_registry.py (GET cases; headers come from -H on the command line).
-- done() prints one machine-readable line with exact counters, which the benchmark parses.
-- It defines no request()/response(), so wrk keeps its fast path (one pre-built request).
-- Not used for HEAD: wrk 4.1 then waits for the Content-Length body that never comes.

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\"requests\":%d,\"bytes\":%d,\"duration_us\":%d,"
    .. "\"connect\":%d,\"read\":%d,\"write\":%d,\"status\":%d,\"timeout\":%d,"
    .. "\"p50_us\":%d,\"p99_us\":%d}\n",
    summary.requests, summary.bytes, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
