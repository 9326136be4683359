-- POST /release for releases never seen before: every request names a new
-- ReleaseId (unique per run, thread and request), no Approvers, so that the
-- worker asks the approvers API.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local tag = os.getenv("BENCH_TAG") or "run"
local counter = 0
local headers = { ["Content-Type"] = "application/json" }

function request()
   counter = counter + 1
   local body = string.format(
      '{"ReleaseName":"bench-%s","ReleaseId":"%s-%d-%d","TeamProject":"Bench","Stage":"prod"}',
      tag, tag, id, counter)
   return wrk.format("POST", "/release", headers, body)
end
