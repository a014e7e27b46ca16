/* send_adaptive.c - adaptive: SEND_ZC for responses of at least --zc-min-bytes, a regular send
 * below, as servers that know zero-copy's fixed cost do. The threshold is per response (its
 * size, the unit a sweep's crossover is stated in), not per coalesced send. */
#include "send.h"

static bool adaptive_chooses(struct worker *w, const struct response *r)
{
    if (r->len >= w->cfg->zc_min_bytes)
        return true;
    w->st->adaptive_small++;
    return false;
}

const struct send_path send_path_ADAPTIVE = {
    .chooses = adaptive_chooses,
    .pages = zc_pages_for,
    .submit = zc_send_submit,
    .complete = zc_send_complete,
    .capped = true,
    .report_usage = true,
};
