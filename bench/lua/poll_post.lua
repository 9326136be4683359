-- Gate polls with POST /release: a random one of the BENCH_RELEASES releases
-- seeded as ReleaseId "1".."N" of TeamProject "Bench" (answers 200), from
-- ReleaseId BENCH_FIRST on.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local releases = tonumber(os.getenv("BENCH_RELEASES") or "10000")
-- The lowest ReleaseId polled (BENCH_FIRST, default 1): polls of the newest releases only.
local first = tonumber(os.getenv("BENCH_FIRST") or "1")
local headers = { ["Content-Type"] = "application/json" }

function init(args)
   math.randomseed(id * 7919 + 1)
end

function request()
   local body = string.format(
      '{"ReleaseName":"seed","ReleaseId":"%d","TeamProject":"Bench"}',
      math.random(first, releases))
   return wrk.format("POST", "/release", headers, body)
end
