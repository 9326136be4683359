-- GET /approval?token=... (JSON view), cycling through this thread's tokens;
-- with BENCH_ONCE set, each token once, then the thread stops (a warm-up that
-- has viewed every approval).
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
dofile(os.getenv("BENCH_LUA_DIR") .. "/approval_tokens.lua")

local tokens, next_token
local headers = { ["Accept"] = "application/json" }

function init(args)
   tokens = load_tokens()
   next_token = 0
end

function request()
   next_token = next_token % #tokens + 1
   return wrk.format("GET", "/approval?token=" .. tokens[next_token], headers)
end

if os.getenv("BENCH_ONCE") then
   local answered = 0
   function response(status, headers, body)
      answered = answered + 1
      if answered >= #tokens then
         wrk.thread:stop()
      end
   end
end
