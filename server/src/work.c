/* Calibration work: a known amount of CPU spent per response, off by default.
 *
 * `invoke calibrate` runs a regular arm with --calibration-work N beside a plain regular arm
 * to check that the bench's statistics find a cost they were told about. The loop is a
 * xorshift whose result is stored to a volatile sink, so the compiler can neither drop nor
 * fold it, and its cost per iteration is flat (no memory traffic, no branches to mispredict).
 * It is kept out of send.c so the hot path stays readable; the call there is one branch on a
 * value that is 0 in every real comparison. */
#include <errno.h>
#include <time.h>

#include "server.h"

static volatile uint64_t calibration_sink;

static uint64_t clock_ns(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t monotonic_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

/* Every this many calls the loop is timed (a power of two). */
#define ZCB_WORK_TIMED_EVERY 64

/* The work of `responses` responses, and now and then its cost: the calibration judges each dose
 * against the loop's measured CPU time per response, not an aimed one. The clock is the thread's
 * own CPU clock, so a worker preempted mid-loop on a busy machine is not charged the wait (a
 * monotonic clock was: 1.6 s for 0.65 s of CPU, measured here under load). That clock is a
 * syscall, about as costly as the smallest dose if read around every call, so one call in
 * ZCB_WORK_TIMED_EVERY is timed: calibration_work_ns over calibration_work_timed responses. */
void calibration_work_responses(struct worker *w, uint32_t responses)
{
    static __thread uint32_t calls;
    bool timed = (calls++ & (ZCB_WORK_TIMED_EVERY - 1)) == 0;
    uint64_t start = timed ? clock_ns(CLOCK_THREAD_CPUTIME_ID) : 0;
    uint32_t i;

    for (i = 0; i < responses; i++)
        calibration_work(w->cfg->calibration_work);
    if (timed) {
        w->st->calibration_work_ns += clock_ns(CLOCK_THREAD_CPUTIME_ID) - start;
        w->st->calibration_work_timed += responses;
    }
}

/* --calibration-stall S/P: a known tail for `invoke calibrate`'s latency check. Every worker
 * stops answering for S ms every P ms, all on one schedule counted from the server's start (as
 * SIGSTOP/SIGCONT of the whole server would), so a request that arrives in a stall waits until
 * its end: the share S/P of requests waits, uniformly up to S ms, and the latency tail that
 * follows is known (analyze.latency.expected_quantile). The check runs once per loop, before the
 * worker waits: a worker woken by a request inside a stall sleeps out the rest of it. */
static uint64_t stall_epoch_ns;

void calibration_stall_start(void)
{
    stall_epoch_ns = monotonic_ns();
}

void calibration_stall(struct worker *w)
{
    uint64_t period = (uint64_t)w->cfg->stall_period_ms * 1000000ull;
    uint64_t length = (uint64_t)w->cfg->stall_ms * 1000000ull;
    uint64_t since = monotonic_ns() - stall_epoch_ns;
    uint64_t phase = since % period, index = since / period + 1;
    struct timespec rest;

    if (phase >= length)
        return;
    rest.tv_sec = (time_t)((length - phase) / 1000000000ull);
    rest.tv_nsec = (long)((length - phase) % 1000000000ull);
    while (nanosleep(&rest, &rest) != 0 && errno == EINTR)
        ;
    if (index != w->stall_period_seen) {
        w->stall_period_seen = index;
        w->st->calibration_stalls++;
    }
    w->st->calibration_stall_ns += length - phase;
}

void calibration_work(uint32_t iterations)
{
    uint64_t x = 0x9e3779b97f4a7c15ull ^ iterations;
    uint32_t i;

    for (i = 0; i < iterations; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    calibration_sink = x;
}
