-- This thread's share of the tokens in BENCH_TOKENS (one a line): thread k of
-- BENCH_THREADS takes lines k, k+n, k+2n, ...
function load_tokens()
   local threads = tonumber(os.getenv("BENCH_THREADS") or "1")
   local mine, line_no = {}, 0
   for line in io.lines(os.getenv("BENCH_TOKENS")) do
      if line_no % threads == id then
         table.insert(mine, line)
      end
      line_no = line_no + 1
   end
   return mine
end
