-- wrk script, common part: spawnd-bench puts it in front of every workload script (or uses it alone for plain GETs).
-- It numbers the threads and, when wrk finishes, prints ONE line that spawnd-bench parses (bench/wrk_report.h):
--   SPAWND_BENCH_JSON {"requests":N,"duration_us":N,"bytes":N,"errors":{...},"latency_us":{...},"posts":{...}}
-- Latencies are wrk's, in microseconds. "posts" counts the POSTs the workload script sent and the ones answered
-- 303 (the guestbook's success), summed over threads; scripts that send no POST leave both at 0.
--   wrk -t2 -c16 -d5s -s bench/wrk/report.lua http://127.0.0.1:8080/cgi-bin/hello
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

local function count(name)
  local total = 0
  for _, t in ipairs(threads) do total = total + (t:get(name) or 0) end
  return total
end

-- wrk leaves min at the most negative integer, and the mean or stdev may be NaN, when it recorded no latency at
-- all (every request timed out); print 0 then, so that the line stays valid JSON.
local function finite(x)
  if x ~= x or x == math.huge or x == -math.huge or x < 0 then return 0 end
  return x
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'SPAWND_BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"stdev":%.1f,"p50":%d,"p90":%d,"p99":%d,"p99_9":%d},' ..
    '"posts":{"sent":%d,"ok":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    finite(latency.min), finite(latency.mean), finite(latency.max), finite(latency.stdev),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    count("posts_sent"), count("posts_ok")))
end
