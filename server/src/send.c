/* send.c - the common part of every send path: the output queue, the choice between a path's
 * own send and a regular one (in-flight cap, memlock page budget), accounting of sent bytes and
 * responses, completion dispatch. Each mode's operations live in send_<mode>.c.
 *
 * One send per connection is in flight at a time, so responses leave in request order and a
 * short send simply continues from where it stopped. Pipelined requests of one kind wait in
 * the output queue as one run; a send carries as many of them as the response region holds
 * back-to-back copies of (struct response.copies), and its completion accounts each response.
 * Response buffers are immutable and outlive every zero-copy notification (main waits for them
 * before unmapping), so a busy buffer is never rewritten.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "send.h"

#define ZCB_PATH_ENTRY(id, name, zero_copy, registered, user_pages, limit, kernel, needs, title) \
    [SEND_##id] = &send_path_##id,
const struct send_path *const send_paths[SEND_MODES] = { ZCB_SEND_MODES(ZCB_PATH_ENTRY) };
#undef ZCB_PATH_ENTRY

const struct response *send_head_response(const struct worker *w, const struct conn *c)
{
    return &w->responses->r[c->outq[c->outq_head].kind];
}

struct conn *send_conn(struct worker *w, uint64_t ud)
{
    struct conn *c = &w->conns[ud_slot(ud)];

    return (c->fd < 0 || (c->gen & ZCB_UD_GEN_MASK) != ud_gen(ud)) ? NULL : c;
}

void send_started(struct conn *c, uint32_t len)
{
    c->send_inflight = true;
    c->send_len = len;
}

void send_regular(struct worker *w, struct conn *c, const char *p, uint32_t len)
{
    struct io_uring_sqe *sqe = uring_sqe(w);

    io_uring_prep_send(sqe, c->fd, p, len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud_make(OP_SEND, c->gen, conn_slot(w, c)));
    send_started(c, len);
}

void send_resend_regular(struct worker *w, struct conn *c)
{
    send_regular(w, c, send_head_response(w, c)->data + c->out_off, c->send_len);
}

/* What the kernel charges a zero-copy send from plain user memory against RLIMIT_MEMLOCK until
 * its notification: io_notif_account_mem() for SEND_ZC/SENDMSG_ZC, mm_account_pinned_pages()
 * for MSG_ZEROCOPY, both (len >> PAGE_SHIFT) + 2. */
uint32_t zc_pages_for(const struct worker *w, uint32_t len)
{
    return (len >> w->page_shift) + 2;
}

void zc_hold(struct worker *w, uint32_t pages)
{
    if (++w->st->zc_inflight > w->st->zc_inflight_peak)
        w->st->zc_inflight_peak = w->st->zc_inflight;
    w->st->zc_pages += pages;
    if (w->st->zc_pages > w->st->zc_pages_peak)
        w->st->zc_pages_peak = w->st->zc_pages;
}

void zc_release(struct worker *w, uint64_t sends, uint64_t pages)
{
    w->st->zc_inflight -= sends;
    w->st->zc_pages -= pages;
}

/* May this send go the path's own (zero-copy) way? Counts the fallback when it may not. */
static bool zc_room(struct worker *w, uint32_t pages)
{
    if (w->cfg->zc_max_inflight && w->st->zc_inflight >= w->cfg->zc_max_inflight) {
        w->st->fallback_cap++;
        return false;
    }
    if (w->zc_page_budget && w->st->zc_pages + pages > w->zc_page_budget) {
        /* the kernel would refuse the memlock charge (ENOMEM/ENOBUFS) or come close */
        w->st->fallback_budget++;
        return false;
    }
    return true;
}

/* Start sending the next bytes of this connection's output queue, if any. */
void send_next(struct worker *w, struct conn *c)
{
    const struct send_path *path = w->path;
    const struct response *r;
    const char *p;
    uint32_t len, pages, n;

    if (c->send_inflight || c->outq_len == 0 || c->closing)
        return;
    r = send_head_response(w, c);
    n = c->outq[c->outq_head].count < r->copies ? c->outq[c->outq_head].count : r->copies;
    p = r->data + c->out_off;
    len = n * r->len - c->out_off;
    if (!path->submit || (path->chooses && !path->chooses(w, r))) {
        send_regular(w, c, p, len);
        return;
    }
    pages = path->pages ? path->pages(w, len) : 0;
    if (path->capped && !zc_room(w, pages)) {
        send_regular(w, c, p, len);
        return;
    }
    path->submit(w, c, r, p, len, pages);
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
    const struct response *r = send_head_response(w, c);
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

void send_abandoned(struct worker *w, struct conn *c, int res)
{
    c->send_inflight = false;
    conn_after_send(w, c, res < 0 ? res : -EPIPE);
}

void send_refused(struct worker *w, struct conn *c, int res, uint64_t *fallbacks)
{
    if (c->closing) {
        send_abandoned(w, c, res);
        return;
    }
    (*fallbacks)++;
    send_resend_regular(w, c);
}

void send_finished(struct worker *w, struct conn *c, int res)
{
    if (res <= 0) {
        w->st->send_errors++;
        send_abandoned(w, c, res);
        return;
    }
    c->send_inflight = false;
    account_sent(w, c, res);
    conn_after_send(w, c, res);
}

static void regular_complete(struct worker *w, const struct io_uring_cqe *cqe)
{
    struct conn *c = send_conn(w, cqe->user_data);

    w->st->sends_regular++;
    if (c)
        send_finished(w, c, cqe->res);
}

void send_on_cqe(struct worker *w, const struct io_uring_cqe *cqe)
{
    if (ud_op(cqe->user_data) == OP_SEND)
        regular_complete(w, cqe);
    else
        w->path->complete(w, cqe);
}

void *path_conns_map(struct worker *w, size_t per_conn)
{
    void *p = mmap(NULL, per_conn * w->cfg->max_conns, PROT_READ | PROT_WRITE,
                   MAP_ANONYMOUS | MAP_PRIVATE | MAP_NORESERVE, -1, 0);

    w->path_conns = p == MAP_FAILED ? NULL : p;
    if (!w->path_conns)
        snprintf(w->setup_msg, sizeof(w->setup_msg), "cannot map %zu bytes of send state per connection", per_conn);
    return w->path_conns;
}

void path_conns_unmap(struct worker *w, size_t per_conn)
{
    if (w->path_conns)
        munmap(w->path_conns, per_conn * w->cfg->max_conns);
    w->path_conns = NULL;
}
