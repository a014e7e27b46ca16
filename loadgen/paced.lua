-- Paced load: wrk offers RATE requests per second in total, spread over its THREADS
-- (wrk ... -s paced.lua URL -- RATE THREADS [CONNS READY GO]), instead of as many as it can.
--
-- Each thread keeps one schedule of request slots, RATE / THREADS per second, and delay()
-- holds every request back until its slot; any idle connection of the thread takes the next
-- slot, so the offered rate does not depend on the server's latency (open loop while the
-- thread has idle connections). A backlog older than MAX_LAG_MS is dropped rather than
-- replayed as a burst: the achieved rate then falls short, and zcbench flags the cell.
-- wrk's delay() counts whole milliseconds; slots are kept in fractional milliseconds, so
-- the average interval is exact even when a single delay is rounded. A delay is rounded up,
-- plus a millisecond (wrk's timers read a clock truncated to milliseconds and can fire up to
-- one early): no request leaves before its slot, none before a scheduled window's start.
--
-- Two ways to run:
-- * A scheduled window (CONNS READY GO; zcbench's measure.windows): a wrk thread opens all its
--   connections before its first delay() call. There it writes "ready" to the FIFO READY, then
--   waits for the file GO to hold "START_MS END_MS" (CLOCK_MONOTONIC milliseconds, the clock
--   zcbench reads the server's CPU time and counters by): its first slot is START_MS, no slot
--   is handed out at or after END_MS (a connection that would get one is parked), and a POSIX
--   timer sends wrk's main thread SIGINT at END_MS + STOP_GRACE_MS, which wrk takes as the end
--   of its run. A thread whose CONNS / THREADS connections are all parked has nothing in flight
--   and stops its own loop (else it stops at its next 100 ms tick); done() then prints the
--   result. So the window is [START_MS, END_MS] exactly: the rate, the latencies (every request
--   is sent in it) and zcbench's snapshots at its two ends cover the same seconds, and opening
--   the connections (about 90 ms for 1000 and 230 ms for 4000 here) is outside all of them.
--   wrk's -d is only a backstop.
-- * No schedule: each thread's first slot is its first delay() call, after opening its
--   connections, inside wrk's duration; its window runs from there to its last delay() call.
--
-- Reports through report.lua's done(), whose JSON gets a "paced" object: how long each thread
-- took from its start to its connections being open (the ramp), the slots it took and the slots
-- it let lapse, and its paced window. zcbench judges the achieved rate over the mean window, so
-- a cell is not called short for its connects. Each thread paces RATE / THREADS, so
-- requests / mean window is the rate over the threads.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

local ffi = require("ffi")
ffi.cdef [[
  struct zcb_timespec { long tv_sec; long tv_nsec; };
  struct zcb_itimerspec { struct zcb_timespec it_interval; struct zcb_timespec it_value; };
  struct zcb_sigevent { void *value; int signo; int notify; int tid; int pad[11]; };
  int clock_gettime(int clk_id, struct zcb_timespec *tp);
  int nanosleep(const struct zcb_timespec *req, struct zcb_timespec *rem);
  int timer_create(int clk_id, struct zcb_sigevent *sev, void **timer);
  int timer_settime(void *timer, int flags, const struct zcb_itimerspec *value, struct zcb_itimerspec *old);
  int gettid(void);
]]
local CLOCK_MONOTONIC = 1
local TIMER_ABSTIME = 1
local SIGINT = 2
local SIGEV_THREAD_ID = 4 -- Linux: the signal goes to one thread (wrk's main thread sleeps in it)
local MAX_LAG_MS = 100
-- after END_MS, before wrk is told to stop: zcbench reads the server's counters 2 ms after
-- END_MS, before wrk's exit closes its connections
local STOP_GRACE_MS = 10
-- a connection that would get a slot after the window waits longer than any run lasts
local PARKED_MS = 3600 * 1000
-- how often a ready thread looks for GO, and how long before it gives up
local GO_POLL_NS = 200 * 1000
local GO_TIMEOUT_MS = 60 * 1000
local ts = ffi.new("struct zcb_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

-- SIGINT to thread `tid` (wrk's main thread) at `at_ms` on CLOCK_MONOTONIC.
local function stop_wrk_at(tid, at_ms)
  local sev = ffi.new("struct zcb_sigevent")
  sev.signo, sev.notify, sev.tid = SIGINT, SIGEV_THREAD_ID, tid
  local timer = ffi.new("void *[1]")
  if ffi.C.timer_create(CLOCK_MONOTONIC, sev, timer) ~= 0 then
    error("paced.lua: timer_create failed")
  end
  local spec = ffi.new("struct zcb_itimerspec")
  spec.it_value.tv_sec = math.floor(at_ms / 1000)
  spec.it_value.tv_nsec = math.floor((at_ms % 1000) * 1e6)
  if ffi.C.timer_settime(timer[0], TIMER_ABSTIME, spec, nil) ~= 0 then
    error("paced.lua: timer_settime failed")
  end
end

local interval_ms
local next_slot_ms
local thread_conns, ready_path, go_path, main_tid -- a scheduled window's (nil without one)
-- per thread, read by done() through thread:get() (hence globals)
paced_start_ms = nil
paced_first_slot_ms = nil
paced_last_call_ms = nil
paced_ready_ms = nil -- scheduled: the first delay() call (the thread's connections are open)
paced_parked = 0 -- scheduled: connections left waiting at the end of the window
paced_slots = 0
paced_lapsed_slots = 0
-- the scheduled window (nil without one); done() runs in wrk's main Lua state, where init()
-- never ran, so it reads them from the threads too
window_start_ms, window_end_ms = nil, nil

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
  if args[3] ~= nil then
    local conns = tonumber(args[3])
    ready_path, go_path = args[4], args[5]
    if conns == nil or conns < threads or ready_path == nil or go_path == nil then
      error("paced.lua: a scheduled window needs -- RATE THREADS CONNS READY GO; got "
            .. table.concat({tostring(args[3]), tostring(args[4]), tostring(args[5])}, " "))
    end
    thread_conns = math.floor(conns / threads) -- as wrk shares them out
    main_tid = ffi.C.gettid() -- init() runs in wrk's main thread
  end
end

-- Tell zcbench this thread's connections are open, wait for the window it picks, and have wrk
-- stopped right after it.
local function await_window(now)
  paced_ready_ms = now
  local ready = assert(io.open(ready_path, "a"))
  ready:write(string.format("ready %.3f\n", now))
  ready:close()
  local pause = ffi.new("struct zcb_timespec", {0, GO_POLL_NS})
  while true do
    local go = io.open(go_path, "r")
    local text = go and go:read("*l")
    if go then go:close() end
    local start_ms, end_ms = (text or ""):match("^(%S+) (%S+)$")
    if start_ms then
      window_start_ms, window_end_ms = tonumber(start_ms), tonumber(end_ms)
      break
    end
    if now_ms() - now > GO_TIMEOUT_MS then
      error("paced.lua: no window in " .. go_path)
    end
    ffi.C.nanosleep(pause, nil)
  end
  stop_wrk_at(main_tid, window_end_ms + STOP_GRACE_MS)
end

delay = function()
  local now = now_ms()
  if next_slot_ms == nil then
    if ready_path ~= nil then
      await_window(now)
      now = now_ms()
    end
    next_slot_ms = window_start_ms or now
    paced_first_slot_ms = next_slot_ms
  elseif next_slot_ms < now - MAX_LAG_MS then
    paced_lapsed_slots = paced_lapsed_slots + math.floor((now - next_slot_ms) / interval_ms)
    next_slot_ms = now
  end
  if window_end_ms ~= nil and (next_slot_ms >= window_end_ms or now >= window_end_ms) then
    -- (a saturated thread's slots lag behind the clock)
    paced_parked = paced_parked + 1
    if paced_parked == thread_conns then
      wrk.thread:stop() -- every connection waits here: nothing is in flight
    end
    return PARKED_MS
  end
  local slot = next_slot_ms
  next_slot_ms = slot + interval_ms
  paced_slots = paced_slots + 1
  paced_last_call_ms = now
  local wait = slot - now
  return wait > 0 and math.ceil(wait) + 1 or 0
end

-- report.lua's "paced" object, over the threads: the mean and longest ramp (start to the
-- connections being open: the first slot without a schedule, the first delay() call with one)
-- and the mean paced window (without a schedule: first slot to the last call of delay(), i.e.
-- until the thread stopped: wrk stops each thread at its own next 100 ms tick; with one: the
-- scheduled window); null when a thread never took a slot. The slots taken and lapsed, and with a
-- schedule the connections parked, summed, and when the first thread started and the last one
-- was ready (CLOCK_MONOTONIC ms).
paced_report = function(num)
  local ramp_sum, ramp_max, window_sum, slots, lapsed, timed, parked = 0, 0, 0, 0, 0, 0, 0
  local start_ms, end_ms, started_ms, ready_ms
  for _, thread in ipairs(threads) do
    local start, first = thread:get("paced_start_ms"), thread:get("paced_first_slot_ms")
    local last, ready = thread:get("paced_last_call_ms"), thread:get("paced_ready_ms")
    start_ms, end_ms = thread:get("window_start_ms"), thread:get("window_end_ms")
    started_ms = start and math.min(started_ms or start, start) or started_ms
    ready_ms = ready and math.max(ready_ms or ready, ready) or ready_ms
    if start_ms ~= nil and start and ready then
      timed = timed + 1
      ramp_sum = ramp_sum + (ready - start)
      ramp_max = math.max(ramp_max, ready - start)
      window_sum = window_sum + (end_ms - start_ms)
    elseif start_ms == nil and start and first and last then
      timed = timed + 1
      ramp_sum = ramp_sum + (first - start)
      ramp_max = math.max(ramp_max, first - start)
      window_sum = window_sum + (last - first)
    end
    slots = slots + (thread:get("paced_slots") or 0)
    lapsed = lapsed + (thread:get("paced_lapsed_slots") or 0)
    parked = parked + (thread:get("paced_parked") or 0)
  end
  local all = timed == #threads and timed > 0
  local report = {
    {"threads", num(#threads)},
    {"ramp_ms_mean", num(all and ramp_sum / timed or nil)},
    {"ramp_ms_max", num(all and ramp_max or nil)},
    {"window_ms_mean", num(all and window_sum / timed or nil)},
    {"slots", num(slots)},
    {"lapsed_slots", num(lapsed)},
  }
  if start_ms ~= nil then
    report[#report + 1] = {"started_ms", num(started_ms)}
    report[#report + 1] = {"ready_ms", num(ready_ms)}
    report[#report + 1] = {"window_start_ms", num(start_ms)}
    report[#report + 1] = {"window_end_ms", num(end_ms)}
    report[#report + 1] = {"parked", num(parked)}
  end
  return report
end
