-- wrk script for bench/search.sh: each request takes the next path from a list file, so that the
-- requests of a run spread over many citizens instead of hitting one cached record; every request
-- carries the bearer token. Counts answers that are not 2xx and keeps the first one's status and body,
-- so that the benchmark can refuse to report figures for errors.
--
-- Environment: PATHS (file, one path a line, relative to the FHIR base, e.g. "Patient/9001000002"),
-- BASE_PATH (the base URL's path, e.g. "/fhir"), TOKEN (the bearer token).
-- done() prints one line "RESULT key=value ..." (latencies in microseconds) and, if there was an
-- error, one line "FIRST_ERROR <status> <body>".

-- setup(), response() and done(): the counting and the RESULT line every bench script shares.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")

local requests = {}
local next_index = 1

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
