-- Gate polls with GET /release/Bench/{id}: a random one of the seeded releases.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local releases = tonumber(os.getenv("BENCH_RELEASES") or "10000")
local headers = { ["Accept"] = "application/json" }

function init(args)
   math.randomseed(id * 7919 + 1)
end

function request()
   return wrk.format("GET", "/release/Bench/" .. math.random(1, releases), headers)
end
