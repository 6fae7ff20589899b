-- wrk script for bench/run.sh: reads and creates in a fixed proportion. Every CREATE_EVERY-th request
-- is the next create from a list (so that writes spread over many citizens), the others the next
-- read path from a list; CREATE_EVERY=1 makes every request a create, 10 gives 90% reads and 10%
-- creates. Every request carries the bearer token. Counts answers that are not 2xx and keeps the
-- first one's status and body, as paths.lua does, so that the benchmark can refuse figures for errors.
--
-- Environment: PATHS (file, one read path a line, relative to the FHIR base; not needed with
-- CREATE_EVERY=1), CREATES (file, one create a line: "<type><TAB><JSON body>", POSTed to
-- BASE_PATH/<type>), CREATE_EVERY (a positive number), BASE_PATH (the base URL's path, e.g. "/fhir"),
-- TOKEN (the bearer token).
-- done() prints one line "RESULT key=value ..." (latencies in microseconds) and, if there was an
-- error, one line "FIRST_ERROR <status> <body>"; the same lines as paths.lua.

-- setup(), response() and done(): the counting and the RESULT line every bench script shares.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")

local reads = {}
local creates = {}
local next_read = 1
local next_create = 1
local create_every = 1
local counter = 0

local function load(path, each)
  local file = assert(io.open(path, "r"))
  for line in file:lines() do
    if line ~= "" then
      each(line)
    end
  end
  file:close()
end

function init(args)
  local base = os.getenv("BASE_PATH") or ""
  local token = assert(os.getenv("TOKEN"), "TOKEN is not set")
  create_every = assert(tonumber(os.getenv("CREATE_EVERY") or ""), "CREATE_EVERY is not a number")
  assert(create_every >= 1, "CREATE_EVERY must be at least 1")
  local read_headers = { ["Authorization"] = "Bearer " .. token, ["Accept"] = "application/fhir+json" }
  local create_headers = {
    ["Authorization"] = "Bearer " .. token,
    ["Accept"] = "application/fhir+json",
    ["Content-Type"] = "application/fhir+json",
  }
  load(assert(os.getenv("CREATES"), "CREATES is not set"), function(line)
    local type_name, body = line:match("^([^\t]+)\t(.*)$")
    assert(type_name, "a CREATES line is not <type><TAB><body>")
    table.insert(creates, wrk.format("POST", base .. "/" .. type_name, create_headers, body))
  end)
  assert(#creates > 0, "the create list is empty")
  if create_every > 1 then
    load(assert(os.getenv("PATHS"), "PATHS is not set"), function(line)
      table.insert(reads, wrk.format("GET", base .. "/" .. line, read_headers))
    end)
    assert(#reads > 0, "the path list is empty")
  end
  -- Threads start at different places in the lists, so that they do not work on the same citizen.
  next_read = (thread_number * math.floor(#reads / 2 + 1)) % math.max(#reads, 1) + 1
  next_create = (thread_number * math.floor(#creates / 2 + 1)) % #creates + 1
  counter = thread_number
end

function request()
  counter = counter + 1
  if counter % create_every == 0 then
    local r = creates[next_create]
    next_create = next_create % #creates + 1
    return r
  end
  local r = reads[next_read]
  next_read = next_read % #reads + 1
  return r
end
