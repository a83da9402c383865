-- wrk script: POST the JSON body in $BENCH_BODY (a file) with the bearer token in $BENCH_TOKEN, count
-- answers that are not a clean 200 (GraphQL errors included), and print one JSON line from done().
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("BENCH_TOKEN") or ""
if token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

-- $BENCH_BODIES (a file, one JSON body a line), when set: the bodies are sent in turn, each thread from its own
-- place in the list (W3 spreads its new contacts over many patients)
local bodies = nil
local listed = os.getenv("BENCH_BODIES") or ""
if listed ~= "" then
  bodies = {}
  for line in io.lines(listed) do
    table.insert(bodies, line)
  end
end

bad = 0
local threads = {}
local turn = 0

function setup(thread)
  table.insert(threads, thread)
  thread:set("place", #threads - 1)
end

function init(args)
  if bodies then
    turn = (place or 0) * math.floor(#bodies / 16)
  end
end

if bodies then
  function request()
    turn = turn % #bodies + 1
    return wrk.format(nil, nil, nil, bodies[turn])
  end
end

function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "bad": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), failed,
    e.connect + e.read + e.write + e.timeout))
end
