-- zcbench wrk script: done() prints ONE line holding a JSON object with everything zcbench
-- needs, so nothing parses wrk's human-readable text. Latencies are in microseconds,
-- duration in microseconds (as wrk measures them). A script that dofile()s this one may define
-- paced_report(num): a list of {key, JSON text} pairs printed as the object "paced" (else null).

-- The finer percentile table for plots (the headline ones are printed separately).
local table_percentiles = {
  1, 5, 10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 96, 97, 98, 99,
  99.5, 99.9, 99.95, 99.99, 99.999, 100,
}
local headline = { {"p50", 50}, {"p75", 75}, {"p90", 90}, {"p99", 99}, {"p99.9", 99.9}, {"p99.99", 99.99} }

local function num(x)
  if x == nil then return "null" end
  if x ~= x or x == math.huge or x == -math.huge then return "null" end
  if x == math.floor(x) and math.abs(x) < 2^53 then return string.format("%.0f", x) end
  return string.format("%.10g", x)
end

-- wrk's percentile(100) walks past the last bucket and returns 0: the 100th is the max.
local function percentile(latency, p)
  if p >= 100 then return latency.max end
  return latency:percentile(p)
end

local function object(pairs_list)
  local parts = {}
  for _, kv in ipairs(pairs_list) do
    parts[#parts + 1] = string.format("%q:%s", kv[1], kv[2])
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

done = function(summary, latency, requests)
  local e = summary.errors
  local lat = { {"mean", num(latency.mean)}, {"stdev", num(latency.stdev)},
                {"min", num(latency.min)}, {"max", num(latency.max)} }
  for _, h in ipairs(headline) do
    lat[#lat + 1] = {h[1], num(percentile(latency, h[2]))}
  end
  local rows = {}
  for _, p in ipairs(table_percentiles) do
    rows[#rows + 1] = "[" .. num(p) .. "," .. num(percentile(latency, p)) .. "]"
  end
  local seconds = summary.duration / 1e6
  io.write(object({
    {"zcbench_wrk", "1"},
    {"requests", num(summary.requests)},
    {"duration_us", num(summary.duration)},
    {"bytes", num(summary.bytes)},
    {"requests_per_s", num(seconds > 0 and summary.requests / seconds or 0)},
    {"errors", object({ {"connect", num(e.connect)}, {"read", num(e.read)}, {"write", num(e.write)},
                        {"timeout", num(e.timeout)}, {"status", num(e.status)} })},
    {"latency_us", object(lat)},
    {"percentiles_us", "[" .. table.concat(rows, ",") .. "]"},
    {"paced", paced_report and object(paced_report(num)) or "null"},
  }) .. "\n")
end
