-- GET BENCH_PATH (e.g. /releases?status=pending) as JSON, again and again:
-- the board's first page and its filters in bench/million/run.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local path = os.getenv("BENCH_PATH") or "/releases"
local headers = { ["Accept"] = "application/json" }

function request()
   return wrk.format("GET", path, headers)
end
