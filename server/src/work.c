/* Calibration work: a known amount of CPU spent per response, off by default.
 *
 * `invoke calibrate` runs a regular arm with --calibration-work N beside a plain regular arm
 * to check that the bench's statistics find a cost they were told about. The loop is a
 * xorshift whose result is stored to a volatile sink, so the compiler can neither drop nor
 * fold it, and its cost per iteration is flat (no memory traffic, no branches to mispredict).
 * It is kept out of send.c so the hot path stays readable; the call there is one branch on a
 * value that is 0 in every real comparison. */
#include "server.h"

static volatile uint64_t calibration_sink;

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
