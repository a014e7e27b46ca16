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

static uint64_t monotonic_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Every this many calls the loop is timed (a power of two). */
#define ZCB_WORK_TIMED_EVERY 16
/* A timed call slower per response than this many times the fastest one was preempted. */
#define ZCB_WORK_PREEMPTED 8
/* ...unless this many timed calls in a row were: then the fastest was the odd reading. */
#define ZCB_WORK_REJECTED_IN_A_ROW 8

/* The work of `responses` responses, and now and then its cost: the calibration judges each dose
 * against the loop's measured time per response, not an aimed one. Measured here (2 vCPUs, TSC):
 *  - the thread's CPU clock is a syscall of about 0.6 µs, and the loop after a syscall runs
 *    slower than in place: timed that way, 100 iterations read as 440 ns, 1500 as 2800 (not
 *    proportional: a fixed 250-300 ns that untimed calls never pay);
 *  - the monotonic clock is the vDSO's (24 ns, no kernel entry), but it keeps running while the
 *    worker is preempted: timing every call on a busy machine read 1.6 s for 0.65 s of CPU.
 * So one call in ZCB_WORK_TIMED_EVERY is timed with the monotonic clock, less what the clock itself
 * adds (the shortest empty interval this thread has timed: one empty interval alone is sometimes
 * preempted or slow), and a call ZCB_WORK_PREEMPTED times slower per response than the fastest one
 * seen is left out (it was preempted). A call that timed no longer than the clock's own cost is
 * unreadable and left out too: taken as 0 ns it would become the fastest and, the server living for
 * the whole run, every later call would be "preempted" against it. A reading just above the
 * clock's cost does the same (seen on a busy VM: one call of a 220 ns loop read 10 ns, and the
 * dose's every later call was left out), so ZCB_WORK_REJECTED_IN_A_ROW calls left out in a row
 * make the latest one the fastest. calibration_work_ns over calibration_work_timed responses is
 * the loop's time per response. */
void calibration_work_responses(struct worker *w, uint32_t responses)
{
    static __thread uint32_t calls;
    static __thread uint64_t fastest = UINT64_MAX;    /* ns per response of the fastest timed call */
    static __thread uint64_t clock_cost = UINT64_MAX; /* the shortest empty interval timed */
    static __thread uint32_t rejected;                /* timed calls left out in a row */
    bool timed = (calls++ & (ZCB_WORK_TIMED_EVERY - 1)) == 0;
    uint64_t start = timed ? monotonic_ns() : 0, spent, empty, each;
    uint32_t i;

    for (i = 0; i < responses; i++)
        calibration_work(w->cfg->calibration_work);
    if (!timed || responses == 0)
        return;
    spent = monotonic_ns() - start;
    start = monotonic_ns();
    empty = monotonic_ns() - start;
    if (empty < clock_cost)
        clock_cost = empty;
    if (spent <= clock_cost)
        return;
    spent -= clock_cost;
    each = spent / responses;
    if (each < fastest)
        fastest = each;
    if (each > ZCB_WORK_PREEMPTED * fastest + 100) {
        if (++rejected < ZCB_WORK_REJECTED_IN_A_ROW)
            return;
        fastest = each;
    }
    rejected = 0;
    w->st->calibration_work_ns += spent;
    w->st->calibration_work_timed += responses;
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
