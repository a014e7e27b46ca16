/* send.c - the send arms: regular SEND, SEND_ZC, SEND_ZC from a registered buffer.
 *
 * One send per connection is in flight at a time, so responses leave in request order and a
 * short send simply continues from where it stopped. Pipelined requests of one kind wait in
 * the output queue as one run; a send carries as many of them as the response region holds
 * back-to-back copies of (struct response.copies), and its completion accounts each response.
 *
 * A SEND_ZC yields a result CQE and, when that CQE has IORING_CQE_F_MORE, a later
 * notification CQE (IORING_CQE_F_NOTIF) once the kernel no longer reads the buffer. The
 * in-flight count follows those flags, not `res`: a failed SEND_ZC may still carry F_MORE
 * and be notified later. Response buffers are immutable and outlive every notification
 * (main waits for them before unmapping), so a busy buffer is never rewritten.
 */
#include <errno.h>
#include <sys/socket.h>

#include "server.h"


static const struct response *head_response(const struct worker *w, const struct conn *c)
{
    return &w->responses->r[c->outq[c->outq_head].kind];
}

static void submit_regular(struct worker *w, struct conn *c, const char *p, uint32_t len)
{
    struct io_uring_sqe *sqe = uring_sqe(w);

    io_uring_prep_send(sqe, c->fd, p, len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud_make(OP_SEND, c->gen, (uint32_t)(c - w->conns)));
    c->send_inflight = true;
    c->send_len = len;
}

/* What the kernel charges a SEND_ZC from a plain buffer against RLIMIT_MEMLOCK until its
 * notification (io_notif_account_mem); a registered buffer was charged once, at registration. */
static uint32_t zc_pages_charged(const struct worker *w, uint32_t len)
{
    return w->cfg->send_mode == SEND_ZC ? (len >> w->page_shift) + 2 : 0;
}

static void submit_zc(struct worker *w, struct conn *c, const char *p, uint32_t len, uint32_t pages)
{
    struct io_uring_sqe *sqe = uring_sqe(w);
    unsigned zc_flags = w->cfg->zc_report_usage ? IORING_SEND_ZC_REPORT_USAGE : 0;

    if (w->cfg->send_mode == SEND_ZC_FIXED)
        io_uring_prep_send_zc_fixed(sqe, c->fd, p, len, MSG_NOSIGNAL, zc_flags, 0);
    else
        io_uring_prep_send_zc(sqe, c->fd, p, len, MSG_NOSIGNAL, zc_flags);
    io_uring_sqe_set_data64(sqe, ud_make_charged(OP_SEND_ZC, c->gen, pages, (uint32_t)(c - w->conns)));
    c->send_inflight = true;
    c->send_len = len;
    if (++w->st->zc_inflight > w->st->zc_inflight_peak)
        w->st->zc_inflight_peak = w->st->zc_inflight;
    w->st->zc_pages += pages;
    if (w->st->zc_pages > w->st->zc_pages_peak)
        w->st->zc_pages_peak = w->st->zc_pages;
}

/* Start sending the next bytes of this connection's output queue, if any. */
void send_next(struct worker *w, struct conn *c)
{
    const struct response *r;
    const char *p;
    uint32_t len, pages, n;

    if (c->send_inflight || c->outq_len == 0 || c->closing)
        return;
    r = head_response(w, c);
    n = c->outq[c->outq_head].count < r->copies ? c->outq[c->outq_head].count : r->copies;
    p = r->data + c->out_off;
    len = n * r->len - c->out_off;
    pages = zc_pages_charged(w, len);
    if (w->cfg->send_mode == SEND_REGULAR) {
        submit_regular(w, c, p, len);
    } else if (w->cfg->zc_max_inflight && w->st->zc_inflight >= w->cfg->zc_max_inflight) {
        w->st->fallback_cap++;
        submit_regular(w, c, p, len);
    } else if (w->zc_page_budget && w->st->zc_pages + pages > w->zc_page_budget) {
        /* the kernel would refuse the memlock charge (ENOMEM) or come close: send regular */
        w->st->fallback_budget++;
        submit_regular(w, c, p, len);
    } else {
        submit_zc(w, c, p, len, pages);
    }
}

/* `n` responses of the head run are fully sent: drop them from the queue. A send never covers
 * more than the head run held when it was issued (the run may have grown since). */
static void outq_pop(struct conn *c, uint32_t n)
{
    c->outq[c->outq_head].count -= n;
    if (c->outq[c->outq_head].count == 0) {
        c->outq_head = (uint8_t)((c->outq_head + 1) % ZCB_OUTQ_SLOTS);
        c->outq_len--;
    }
}

/* `res` bytes of the send in flight went out: count every response they completed. */
static void account_sent(struct worker *w, struct conn *c, int res)
{
    const struct response *r = head_response(w, c);
    bool closes = r->closes, short_send = (uint32_t)res < c->send_len;
    uint64_t sent = (uint64_t)c->out_off + (uint64_t)res;
    uint32_t done = (uint32_t)(sent / r->len);

    w->st->bytes_sent += (uint64_t)res;
    c->out_off = (uint32_t)(sent % r->len);
    if (short_send)
        w->st->partial_sends++;
    if (done == 0)
        return;
    /* sends = responses + partial_sends - responses_coalesced: a whole send is one response's
     * own, a short one (already counted as partial) none's. */
    w->st->responses += done;
    w->st->responses_coalesced += done - (short_send ? 0 : 1);
    if (w->cfg->calibration_work)
        calibration_work_responses(w, done);
    outq_pop(c, done);
    if (closes)
        c->read_done = true; /* nothing was parsed after it: the queue is empty now */
}

void send_on_cqe(struct worker *w, const struct io_uring_cqe *cqe)
{
    uint64_t ud = cqe->user_data;
    bool zc = ud_op(ud) == OP_SEND_ZC;
    struct conn *c;
    int res = cqe->res;

    if (zc && (cqe->flags & IORING_CQE_F_NOTIF)) {
        /* The kernel released the buffer: no connection state is touched. */
        w->st->zc_notifs++;
        if ((uint32_t)res & IORING_NOTIF_USAGE_ZC_COPIED)
            w->st->zc_copied++;
        w->st->zc_inflight--;
        w->st->zc_pages -= ud_pages(ud);
        return;
    }
    if (zc) {
        w->st->sends_zc++;
        if (!(cqe->flags & IORING_CQE_F_MORE)) {
            w->st->zc_inflight--;
            w->st->zc_pages -= ud_pages(ud);
        }
    } else {
        w->st->sends_regular++;
    }
    c = &w->conns[ud_slot(ud)];
    if (c->fd < 0 || (c->gen & ZCB_UD_GEN_MASK) != ud_gen(ud))
        return; /* cannot happen: a slot is freed only without a send in flight */
    c->send_inflight = false;

    if (zc && res == -ENOMEM) {
        /* The memlock charge for this send failed: resend the same bytes the regular way. */
        w->st->zc_enomem++;
        if (!c->closing) {
            const struct response *r = head_response(w, c);
            w->st->fallback_enomem++; /* counted only when the resend is really issued */
            submit_regular(w, c, r->data + c->out_off, c->send_len); /* the same bytes again */
            return;
        }
    }
    if (res <= 0) {
        if (res != -ENOMEM)
            w->st->send_errors++;
        conn_after_send(w, c, res < 0 ? res : -EPIPE);
        return;
    }
    account_sent(w, c, res);
    conn_after_send(w, c, res);
}
