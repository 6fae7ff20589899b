-- wrk script for bench/soak.sh: a mixed load of a shared care record. Each request is of one kind
-- (a read, a vread, a search, $everything, a create, an update, a transaction), drawn from a fixed
-- schedule in which each kind appears as often as its weight says (shuffled, the same for every
-- run, a different rotation for each thread); within a kind, each request is the next line of that
-- kind's list, so that requests spread over many citizens. Every request carries the bearer token.
-- Counts answers that are not 2xx and keeps the first one's status and body (report.lua).
--
-- Environment: LISTS (a directory holding one file <kind>.tsv a kind, one request a line:
-- "<METHOD><TAB><path relative to the FHIR base, empty for the base>[<TAB><JSON body>]"; each __VALUE__ of
-- a body is replaced by a number that changes from one request to the next, so that an update changes the
-- resource and makes a version), MIX ("kind=weight,kind=weight,...", positive whole weights),
-- BASE_PATH (the base URL's path, e.g. "/fhir"), TOKEN (the bearer token).
-- done() prints one line "RESULT key=value ..." (latencies in microseconds) and, if there was an
-- error, one line "FIRST_ERROR <status> <body>", as the other scripts.

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")

local lists = {}      -- kind -> { { method, path, before, after } ... }
local next_line = {}  -- kind -> index of the next line
local schedule = {}   -- kinds, each as often as its weight
local position = 1
local counter = 0
local headers = {}
local write_headers = {}

local function split_tabs(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    table.insert(fields, field)
  end
  return fields
end

function init(args)
  local base = os.getenv("BASE_PATH") or ""
  local token = assert(os.getenv("TOKEN"), "TOKEN is not set")
  local dir = assert(os.getenv("LISTS"), "LISTS is not set")
  headers = { ["Authorization"] = "Bearer " .. token, ["Accept"] = "application/fhir+json" }
  write_headers = {
    ["Authorization"] = "Bearer " .. token,
    ["Accept"] = "application/fhir+json",
    ["Content-Type"] = "application/fhir+json",
  }
  for kind, weight in (assert(os.getenv("MIX"), "MIX is not set")):gmatch("([%w_]+)=(%d+)") do
    local entries = {}
    local file = assert(io.open(dir .. "/" .. kind .. ".tsv", "r"), "no list for " .. kind)
    for line in file:lines() do
      if line ~= "" then
        local f = split_tabs(line)
        local body = f[3] or ""
        local entry = { method = f[1], path = f[2] == "" and base or base .. "/" .. f[2] }
        if body:find("__VALUE__", 1, true) then
          entry.template = body
        elseif body ~= "" then
          entry.fixed = wrk.format(f[1], entry.path, write_headers, body)
        else
          entry.fixed = wrk.format(f[1], entry.path, headers)
        end
        table.insert(entries, entry)
      end
    end
    file:close()
    assert(#entries > 0, "the list for " .. kind .. " is empty")
    lists[kind] = entries
    -- Threads start at different places in each list, so that they do not work on the same citizen.
    next_line[kind] = (thread_number * math.floor(#entries / 2 + 1)) % #entries + 1
    for _ = 1, tonumber(weight) do
      table.insert(schedule, kind)
    end
  end
  assert(#schedule > 0, "MIX names no kind")
  -- The same shuffle for every run and thread (a fixed seed); threads start at different places.
  math.randomseed(20261101)
  for i = #schedule, 2, -1 do
    local j = math.random(i)
    schedule[i], schedule[j] = schedule[j], schedule[i]
  end
  position = (thread_number * 37) % #schedule + 1
  counter = thread_number * 100003
end

function request()
  local kind = schedule[position]
  position = position % #schedule + 1
  local entries = lists[kind]
  local entry = entries[next_line[kind]]
  next_line[kind] = next_line[kind] % #entries + 1
  if entry.fixed then
    return entry.fixed
  end
  counter = counter + 1
  -- A value from 40.0 to 139.9 that differs from the previous request's: an update changes the resource.
  local value = string.format("%.1f", 40 + (counter * 7 % 1000) / 10)
  return wrk.format(entry.method, entry.path, write_headers, (entry.template:gsub("__VALUE__", value)))
end
