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

static uint64_t monotonic_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The work of `responses` responses, timed: the calibration judges each dose against the loop's
 * measured cost, not an aimed one. The clock is the vDSO's monotonic one (tens of ns, no
 * syscall): a thread CPU clock would be a syscall per send, about as much as the smallest dose.
 * On a pinned worker the loop, which makes no syscall, runs uninterrupted but for preemption. */
void calibration_work_responses(struct worker *w, uint32_t responses)
{
    uint64_t start = monotonic_ns();
    uint32_t i;

    for (i = 0; i < responses; i++)
        calibration_work(w->cfg->calibration_work);
    w->st->calibration_work_ns += monotonic_ns() - start;
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
