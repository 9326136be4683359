-- POST /approval: each of this thread's tokens approves once, in order, so
-- every request records a new decision (the third approver of a release
-- decides it). A thread that runs out of tokens stops and says so.
-- With BENCH_CYCLE set (for the bare poem server) the tokens are reused.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
dofile(os.getenv("BENCH_LUA_DIR") .. "/approval_tokens.lua")

local tokens, sent, answered
local cycle = os.getenv("BENCH_CYCLE") ~= nil
local headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }

function init(args)
   tokens = load_tokens()
   sent, answered = 0, 0
   exhausted = false
end

function request()
   if cycle then
      sent = sent % #tokens + 1
   else
      -- Past the end (connections still in flight) repeat the last token:
      -- the same decision again, which changes nothing.
      sent = math.min(sent + 1, #tokens)
   end
   local body = '{"token":"' .. tokens[sent] .. '","decision":"approve"}'
   return wrk.format("POST", "/approval", headers, body)
end

if not cycle then
   function response(status, headers, body)
      answered = answered + 1
      if answered >= #tokens then
         exhausted = true
         wrk.thread:stop()
      end
   end
end
