-- wrk script for bench_registry.py.
-- WRK_METHOD sets the request method (GET/HEAD); extra headers are passed with -H.
-- done() prints one machine-readable line that bench_registry.py parses; it does not
-- define request()/response(), so wrk keeps its fast static-request path.
wrk.method = os.getenv("WRK_METHOD") or "GET"

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
