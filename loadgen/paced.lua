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
-- Reports through report.lua's done(), whose JSON gets a "paced" object: how long each thread
-- took from its start to its first slot (opening its connections: about 90 ms for 1000 and 250 ms
-- for 4000 here, inside wrk's duration, when nothing is offered yet), the slots it took and the
-- slots it let lapse, and its paced window: first slot to its last delay() call. zcbench judges
-- the achieved rate over the mean window, so a cell is not called short for its connects. Each
-- thread paces RATE / THREADS, so requests / mean window is the rate over the threads.
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
-- per thread, read by done() through thread:get() (hence globals)
paced_start_ms = nil
paced_first_slot_ms = nil
paced_last_call_ms = nil
paced_slots = 0
paced_lapsed_slots = 0

local threads = {}
setup = function(thread)
  threads[#threads + 1] = thread
end

init = function(args)
  local rate, threads = tonumber(args[1] or ""), tonumber(args[2] or "1")
  if rate == nil or rate <= 0 or threads == nil or threads < 1 then
    error("paced.lua needs -- RATE THREADS (positive numbers), got " .. tostring(args[1]) .. " " .. tostring(args[2]))
  end
  interval_ms = 1000 * threads / rate
  paced_start_ms = now_ms()
end

delay = function()
  local now = now_ms()
  if next_slot_ms == nil then
    next_slot_ms, paced_first_slot_ms = now, now
  elseif next_slot_ms < now - MAX_LAG_MS then
    paced_lapsed_slots = paced_lapsed_slots + math.floor((now - next_slot_ms) / interval_ms)
    next_slot_ms = now
  end
  next_slot_ms = next_slot_ms + interval_ms
  paced_slots = paced_slots + 1
  paced_last_call_ms = now
  local wait = next_slot_ms - now
  return wait > 0 and math.floor(wait) or 0
end

-- report.lua's "paced" object, over the threads: the mean and longest ramp (start to first slot)
-- and the mean paced window (first slot to the last call of delay(), i.e. until the thread
-- stopped: wrk stops each thread at its own next 100 ms tick, and its duration runs until the
-- last one; null when a thread never took a slot); the slots taken and lapsed, summed.
paced_report = function(num)
  local ramp_sum, ramp_max, window_sum, slots, lapsed, timed = 0, 0, 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    local start, first = thread:get("paced_start_ms"), thread:get("paced_first_slot_ms")
    local last = thread:get("paced_last_call_ms")
    if start and first and last then
      timed = timed + 1
      ramp_sum = ramp_sum + (first - start)
      ramp_max = math.max(ramp_max, first - start)
      window_sum = window_sum + (last - first)
    end
    slots = slots + (thread:get("paced_slots") or 0)
    lapsed = lapsed + (thread:get("paced_lapsed_slots") or 0)
  end
  local all = timed == #threads and timed > 0
  return {
    {"threads", num(#threads)},
    {"ramp_ms_mean", num(all and ramp_sum / timed or nil)},
    {"ramp_ms_max", num(all and ramp_max or nil)},
    {"window_ms_mean", num(all and window_sum / timed or nil)},
    {"slots", num(slots)},
    {"lapsed_slots", num(lapsed)},
  }
end
