-- Shared by the bench's wrk scripts (loaded with dofile, not run by wrk itself): each thread counts
-- the answers that are not 2xx and keeps the first one's status and body, and done() prints one line
-- "RESULT key=value ..." (latencies in microseconds) and, if there was an error, one line
-- "FIRST_ERROR <status> <body>", so that a benchmark can refuse to report figures for errors.

local thread_count = 0
local threads = {}

function setup(thread)
  thread:set("thread_number", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

non_2xx = 0
first_error = nil

function response(status, headers, body)
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
    if first_error == nil then
      first_error = tostring(status) .. " " .. string.sub(body or "", 1, 600):gsub("[\r\n]+", " ")
    end
  end
end

function done(summary, latency, _)
  local errors = 0
  local first = nil
  for _, thread in ipairs(threads) do
    errors = errors + (thread:get("non_2xx") or 0)
    first = first or thread:get("first_error")
  end
  local socket_errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d non_2xx=%d socket_errors=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), errors, socket_errors))
  if first then
    io.write("FIRST_ERROR " .. first .. "\n")
  end
end
