/* Calibration work: a known amount of CPU spent per response, off by default.
 *
 * `invoke calibrate` runs a regular arm with --calibration-work N beside a plain regular arm
 * to check that the bench's statistics find a cost they were told about. The loop is a
 * xorshift whose result is stored to a volatile sink, so the compiler can neither drop nor
 * fold it, and its cost per iteration is flat (no memory traffic, no branches to mispredict).
 * It is kept out of send.c so the hot path stays readable; the call there is one branch on a
 * value that is 0 in every real comparison. */
#include <time.h>

#include "server.h"

static volatile uint64_t calibration_sink;

static uint64_t clock_ns(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
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
