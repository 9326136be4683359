-- Shared by every bench script (loaded with dofile): numbers the threads,
-- paces requests when BENCH_DELAY_MS is set, and prints one machine-readable
-- line of results for bench/driver.py.

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if pause then
   -- Each connection waits this long after an answer before its next request,
   -- so the load is a steady rate instead of as fast as the server goes.
   function delay()
      return pause
   end
end

function done(summary, latency, requests)
   local stopped = 0
   for _, thread in ipairs(threads) do
      if thread:get("exhausted") then
         stopped = stopped + 1
      end
   end
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"threads_exhausted":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"min":%d,"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}\n',
      summary.requests, summary.duration, summary.bytes, stopped,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9), latency.max))
end
