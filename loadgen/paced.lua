-- Paced load: wrk offers RATE requests per second in total, spread over its THREADS
-- (wrk ... -s paced.lua URL -- RATE THREADS), instead of as many as it can.
--
-- Each thread keeps one schedule of request slots, RATE / THREADS per second, and delay()
-- holds every request back until its slot; any idle connection of the thread takes the next
-- slot, so the offered rate does not depend on the server's latency (open loop while the
-- thread has idle connections). A backlog older than MAX_LAG_MS is dropped rather than
-- replayed as a burst: the achieved rate then falls short, and zcbench flags the cell.
-- wrk's delay() counts whole milliseconds; slots are kept in fractional milliseconds, so
-- the average interval is exact even when a single delay is rounded down.
-- Reports through report.lua's done(), the same JSON object (plus nothing: the offered
-- rate is zcbench's own record).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

local ffi = require("ffi")
ffi.cdef [[
  struct zcb_timespec { long tv_sec; long tv_nsec; };
  int clock_gettime(int clk_id, struct zcb_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local MAX_LAG_MS = 100
local ts = ffi.new("struct zcb_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local interval_ms
local next_slot_ms

init = function(args)
  local rate, threads = tonumber(args[1] or ""), tonumber(args[2] or "1")
  if rate == nil or rate <= 0 or threads == nil or threads < 1 then
    error("paced.lua needs -- RATE THREADS (positive numbers), got " .. tostring(args[1]) .. " " .. tostring(args[2]))
  end
  interval_ms = 1000 * threads / rate
end

delay = function()
  local now = now_ms()
  if next_slot_ms == nil or next_slot_ms < now - MAX_LAG_MS then
    next_slot_ms = now
  end
  next_slot_ms = next_slot_ms + interval_ms
  local wait = next_slot_ms - now
  return wait > 0 and math.floor(wait) or 0
end
