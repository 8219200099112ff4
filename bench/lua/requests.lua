-- wrk script of bench/: replays a request list and reports figures as one JSON line.
--
-- wrk ... -s requests.lua URL -- <requests file> <bearer token or -> <salt>
-- The file has one request per line: METHOD<TAB>PATH<TAB>BODY (BODY may be empty).
-- Each wrk thread walks the list from its own offset. POSTs get a JSON content type and a
-- unique Idempotency-Key (salt-thread-counter), so no two requests are replays.
-- done() prints "BENCH-JSON {...}" with status counts and latency percentiles (ms).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  reqs = {}
  for line in io.lines(args[1]) do
    local method, path, body = line:match("^(%u+)\t([^\t]*)\t(.*)$")
    if method then
      table.insert(reqs, {method, path, body})
    end
  end
  token = args[2]
  salt = args[3] or "x"
  count = #reqs
  position = ((id - 1) * 7919) % count
  counter = 0
  statuses = {}
end

function request()
  position = position % count + 1
  local r = reqs[position]
  counter = counter + 1
  local headers = {}
  if token ~= "-" then
    headers["Authorization"] = "Bearer " .. token
  end
  local body = nil
  if r[3] ~= "" then
    body = r[3]
    headers["Content-Type"] = "application/json"
  end
  if r[1] == "POST" then
    headers["Idempotency-Key"] = salt .. "-" .. id .. "-" .. counter
  end
  return wrk.format(r[1], r[2], headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for code, n in pairs(counts) do
      total[code] = (total[code] or 0) + n
    end
  end
  local parts = {}
  for code, n in pairs(total) do
    table.insert(parts, string.format('"%d": %d', code, n))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests": %d, "seconds": %.3f, "rps": %.2f, ' ..
    '"latency_ms": {"p50": %.3f, "p95": %.3f, "p99": %.3f, "mean": %.3f, "max": %.3f}, ' ..
    '"statuses": {%s}, "socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.mean / 1000, latency.max / 1000,
    table.concat(parts, ", "), e.connect, e.read, e.write, e.timeout))
end
