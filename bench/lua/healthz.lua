-- GET /healthz: no database and no JSON, only deploy-gate's middleware and
-- routing; the ceiling any of its endpoints could reach on this machine.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

function request()
   return wrk.format("GET", "/healthz")
end
