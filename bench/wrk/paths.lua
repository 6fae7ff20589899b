-- wrk script for bench/search.sh: each request takes the next path from a list file, so that the
-- requests of a run spread over many citizens instead of hitting one cached record; every request
-- carries the bearer token. Counts answers that are not 2xx and keeps the first one's status and body,
-- so that the benchmark can refuse to report figures for errors.
--
-- Environment: PATHS (file, one path a line, relative to the FHIR base, e.g. "Patient/9001000002"),
-- BASE_PATH (the base URL's path, e.g. "/fhir"), TOKEN (the bearer token).
-- done() prints one line "RESULT key=value ..." (latencies in microseconds) and, if there was an
-- error, one line "FIRST_ERROR <status> <body>".

local thread_count = 0
local threads = {}

function setup(thread)
  thread:set("thread_number", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local requests = {}
local next_index = 1
non_2xx = 0
first_error = nil

function init(args)
  local base = os.getenv("BASE_PATH") or ""
  local headers = {
    ["Authorization"] = "Bearer " .. assert(os.getenv("TOKEN"), "TOKEN is not set"),
    ["Accept"] = "application/fhir+json",
  }
  local file = assert(io.open(assert(os.getenv("PATHS"), "PATHS is not set"), "r"))
  for line in file:lines() do
    if line ~= "" then
      table.insert(requests, wrk.format("GET", base .. "/" .. line, headers))
    end
  end
  file:close()
  assert(#requests > 0, "the path list is empty")
  -- Threads start at different places in the list, so that they do not ask for the same citizen.
  next_index = (thread_number * math.floor(#requests / 2 + 1)) % #requests + 1
end

function request()
  local r = requests[next_index]
  next_index = next_index % #requests + 1
  return r
end

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
