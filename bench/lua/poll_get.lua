-- Gate polls with GET /release/Bench/{id}: a random one of the seeded releases
-- (ReleaseId BENCH_FIRST..BENCH_RELEASES).
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local releases = tonumber(os.getenv("BENCH_RELEASES") or "10000")
-- The lowest ReleaseId polled (BENCH_FIRST, default 1): polls of the newest releases only.
local first = tonumber(os.getenv("BENCH_FIRST") or "1")
local headers = { ["Accept"] = "application/json" }

function init(args)
   math.randomseed(id * 7919 + 1)
end

function request()
   return wrk.format("GET", "/release/Bench/" .. math.random(first, releases), headers)
end
