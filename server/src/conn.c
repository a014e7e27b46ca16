/* conn.c - connection slots, receive handling, request parsing into the output queue. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "server.h"


static char *conn_rbuf(struct worker *w, struct conn *c)
{
    return w->rbufs + (size_t)(c - w->conns) * ZCB_RBUF_SIZE;
}

static void recv_arm(struct worker *w, struct conn *c)
{
    struct io_uring_sqe *sqe = uring_sqe(w);

    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = ZCB_RECV_BGID;
    io_uring_sqe_set_data64(sqe, ud_make(OP_RECV, c->gen, (uint32_t)(c - w->conns)));
    c->recv_armed = true;
}

void conn_open(struct worker *w, int fd)
{
    struct conn *c;
    uint32_t gen;

    if (w->free_head < 0) {
        close(fd);
        w->st->conns_rejected++;
        return;
    }
    c = &w->conns[w->free_head];
    w->free_head = c->next_free;
    gen = c->gen;
    memset(c, 0, sizeof(*c));
    c->gen = gen;
    c->fd = fd;
    c->next_free = -1;
    c->last_tick = w->tick;
    w->conns_used++;
    w->st->conns_accepted++;
    w->st->conns_open++;
    if (w->path->conn_open)
        w->path->conn_open(w, c);
    recv_arm(w, c);
}

/* Release the slot once the kernel holds no operation of this connection any more. */
void conn_maybe_free(struct worker *w, struct conn *c)
{
    uint8_t i;

    if (!c->closing || c->recv_armed || c->send_inflight || c->fd < 0)
        return;
    if (w->path->conn_busy && w->path->conn_busy(w, c))
        return; /* the path's own operations or notifications are still due */
    if (w->path->conn_release)
        w->path->conn_release(w, c);
    for (i = 0; i < c->outq_len; i++)
        w->st->responses_dropped += c->outq[(c->outq_head + i) % ZCB_OUTQ_SLOTS].count;
    close(c->fd);
    c->fd = -1;
    c->gen++;
    c->next_free = w->free_head;
    w->free_head = (int)(c - w->conns);
    w->conns_used--;
    w->st->conns_closed++;
    w->st->conns_open--;
}

/*
 * End a connection. Graceful (abort=false): FIN after the last response while still reading,
 * so a client's late bytes do not turn into a reset that destroys the response in flight; the
 * slot is freed when the client closes too. Abort: both directions at once.
 */
void conn_close(struct worker *w, struct conn *c, bool abort)
{
    c->read_done = true;
    if (!c->closing) {
        c->closing = true;
        shutdown(c->fd, (abort || c->peer_eof) ? SHUT_RDWR : SHUT_WR);
    } else if (abort) {
        shutdown(c->fd, SHUT_RDWR);
    }
    conn_maybe_free(w, c);
}

static bool outq_push(struct conn *c, enum resp_kind kind)
{
    struct out_run *last;

    if (c->outq_len > 0) {
        last = &c->outq[(c->outq_head + c->outq_len - 1) % ZCB_OUTQ_SLOTS];
        if (last->kind == kind) {
            last->count++;
            return true;
        }
    }
    if (c->outq_len == ZCB_OUTQ_SLOTS)
        return false;
    c->outq[(c->outq_head + c->outq_len) % ZCB_OUTQ_SLOTS] = (struct out_run){ (uint8_t)kind, 1 };
    c->outq_len++;
    return true;
}

static bool outq_full(const struct conn *c)
{
    return c->outq_len == ZCB_OUTQ_SLOTS;
}

static enum resp_kind response_for(const struct http_request *req)
{
    if (req->has_transfer_encoding)
        return RESP_501;
    if (req->method == HTTP_OTHER)
        return RESP_405;
    /* HTTP/1.0 closes by default: a client that asked to keep the connection must be told it
     * is kept, or it waits for a close to find the response's end. */
    if (req->keep_alive && req->minor_version == 0)
        return req->method == HTTP_HEAD ? RESP_OK_KEEP_ALIVE_HEAD : RESP_OK_KEEP_ALIVE;
    if (req->method == HTTP_HEAD)
        return req->keep_alive ? RESP_OK_HEAD : RESP_OK_CLOSE_HEAD;
    return req->keep_alive ? RESP_OK : RESP_OK_CLOSE;
}

static void queue_response(struct worker *w, struct conn *c, enum resp_kind kind)
{
    w->st->requests++;
    if (w->responses->r[kind].error)
        w->st->http_errors++;
    if (w->responses->r[kind].closes)
        c->read_done = true;
    outq_push(c, kind); /* callers checked outq_full() */
}

/* Answer every complete request at the start of buf; returns the bytes consumed. */
static size_t conn_parse(struct worker *w, struct conn *c, const char *buf, size_t len)
{
    size_t off = 0;

    while (off < len && !c->read_done) {
        struct http_request req;
        long n;

        if (c->body_left) {
            size_t skip = (len - off < c->body_left) ? len - off : (size_t)c->body_left;
            off += skip;
            c->body_left -= skip;
            continue;
        }
        if (outq_full(c)) {
            c->blocked = true;
            break;
        }
        n = http_parse_request(buf + off, len - off, &req);
        if (n == HTTP_INCOMPLETE) {
            if (len - off >= ZCB_RBUF_SIZE) {
                queue_response(w, c, RESP_431);
            } else if (!c->head_pending) {
                c->head_pending = true; /* the header deadline runs from here */
                c->head_tick = w->tick;
            }
            break;
        }
        c->head_pending = false;
        if (n == HTTP_MALFORMED) {
            queue_response(w, c, RESP_400);
            break;
        }
        off += (size_t)n;
        c->body_left = req.content_length;
        queue_response(w, c, response_for(&req));
    }
    return c->read_done ? len : off;
}

/* Feed received bytes: parse in place when nothing is carried over, else through rbuf. */
static void conn_feed(struct worker *w, struct conn *c, const char *data, size_t len)
{
    char *rbuf = conn_rbuf(w, c);

    if (c->rlen == 0) {
        size_t used = conn_parse(w, c, data, len);
        data += used;
        len -= used;
    }
    while (len > 0 && !c->read_done) {
        size_t room = ZCB_RBUF_SIZE - c->rlen, n = len < room ? len : room, used;

        if (n == 0) {
            /* Parsing is blocked on a full output queue and the buffer is full too: this
             * client pipelines far more than it reads. Stop serving it. */
            w->st->http_errors++;
            conn_close(w, c, true);
            return;
        }
        memcpy(rbuf + c->rlen, data, n);
        c->rlen += (uint32_t)n;
        data += n;
        len -= n;
        if (c->blocked)
            continue;
        used = conn_parse(w, c, rbuf, c->rlen);
        memmove(rbuf, rbuf + used, c->rlen - used);
        c->rlen -= (uint32_t)used;
    }
    if (c->read_done)
        c->rlen = 0;
}

/* The output queue drained a little: parse what waited in the receive buffer. After the
 * client's FIN nothing more arrives, so once parsing is no longer blocked reading is done. */
static void conn_resume(struct worker *w, struct conn *c)
{
    char *rbuf = conn_rbuf(w, c);
    size_t used;

    c->blocked = false;
    used = conn_parse(w, c, rbuf, c->rlen);
    memmove(rbuf, rbuf + used, c->rlen - used);
    c->rlen -= (uint32_t)used;
    if (c->peer_eof && !c->blocked) {
        c->read_done = true;
        c->rlen = 0;
    }
}

/* The connection was reset: count each complete request still in rbuf as asked and dropped,
 * so requests == responses + responses_dropped keeps holding. */
static void conn_drop_pending(struct worker *w, struct conn *c)
{
    const char *rbuf = conn_rbuf(w, c);
    size_t off = 0;

    while (off < c->rlen) {
        struct http_request req;
        long n;

        if (c->body_left) {
            size_t skip = (c->rlen - off < c->body_left) ? c->rlen - off : (size_t)c->body_left;
            off += skip;
            c->body_left -= skip;
            continue;
        }
        n = http_parse_request(rbuf + off, c->rlen - off, &req);
        if (n <= 0)
            break;
        off += (size_t)n;
        c->body_left = req.content_length;
        w->st->requests++;
        w->st->responses_dropped++;
    }
    c->rlen = 0;
}

static void recv_buffer_recycle(struct worker *w, unsigned bid)
{
    io_uring_buf_ring_add(w->buf_ring, w->recv_bufs + (size_t)bid * ZCB_RECV_BUF_SIZE, ZCB_RECV_BUF_SIZE,
                          (unsigned short)bid, io_uring_buf_ring_mask(ZCB_RECV_BUFS), 0);
    io_uring_buf_ring_advance(w->buf_ring, 1);
}

/* Nothing left to send and no more requests will come: end the connection. */
static bool conn_finished(const struct conn *c)
{
    return c->read_done && c->outq_len == 0 && !c->send_inflight;
}

void conn_on_recv(struct worker *w, struct conn *c, const struct io_uring_cqe *cqe)
{
    int res = cqe->res;

    if (!(cqe->flags & IORING_CQE_F_MORE))
        c->recv_armed = false;
    if (res > 0) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        c->last_tick = w->tick;
        if (!c->read_done)
            conn_feed(w, c, w->recv_bufs + (size_t)bid * ZCB_RECV_BUF_SIZE, (size_t)res);
        recv_buffer_recycle(w, bid);
        send_next(w, c);
    } else if (res == -ENOBUFS) {
        w->st->recv_enobufs++;
    } else if (res == 0) {
        /* The client half-closed: every complete request it sent is still answered. Requests
         * held back in rbuf by a full output queue are parsed as the queue drains
         * (conn_resume); only a trailing incomplete request is discarded. */
        c->peer_eof = true;
        if (!c->blocked)
            c->read_done = true;
    } else {
        /* Reset (or cancellation): nothing more can be delivered. Requests still waiting in
         * rbuf were asked and will never be answered: count them as dropped. */
        c->peer_eof = true;
        if (!c->read_done)
            conn_drop_pending(w, c);
        c->read_done = true;
    }
    if (c->fd < 0)
        return;
    if (c->closing) {
        /* After our FIN we only wait for the client's; any end of the receive frees the slot. */
        if (!c->recv_armed) {
            if (res > 0 || res == -ENOBUFS)
                shutdown(c->fd, SHUT_RDWR);
            conn_maybe_free(w, c);
        }
        return;
    }
    if (conn_finished(c)) {
        conn_close(w, c, c->peer_eof || w->stopping);
        return;
    }
    if (!c->recv_armed && !c->peer_eof)
        recv_arm(w, c);
}

/* A send completed (res < 0: it failed). Called by send.c once the bytes are accounted. */
void conn_after_send(struct worker *w, struct conn *c, int res)
{
    c->last_tick = w->tick;
    if (res < 0) {
        if (!c->read_done)
            conn_drop_pending(w, c);
        conn_close(w, c, true);
        return;
    }
    if (c->closing) {
        conn_maybe_free(w, c);
        return;
    }
    if (c->blocked)
        conn_resume(w, c);
    if (c->outq_len == 0 && (c->read_done || w->stopping)) {
        conn_close(w, c, w->stopping);
        return;
    }
    send_next(w, c);
}

/* A request head that is still incomplete past the header deadline: answer 408 and close
 * (after the responses already queued), so a slow sender cannot hold a slot for ever. */
static void conn_header_timeout(struct worker *w, struct conn *c)
{
    w->st->header_timeouts++;
    c->head_pending = false;
    c->rlen = 0;
    if (outq_full(c)) {
        conn_close(w, c, true);
        return;
    }
    queue_response(w, c, RESP_408);
    send_next(w, c);
}

/* Once a second: the header deadline, then the idle timeout (any byte received resets it). */
void conns_sweep_idle(struct worker *w)
{
    uint32_t i, idle_ticks = w->cfg->idle_timeout_s * (1000 / ZCB_TICK_MS);
    uint32_t header_ticks = w->cfg->header_timeout_s * (1000 / ZCB_TICK_MS);

    if (idle_ticks == 0 && header_ticks == 0)
        return;
    for (i = 0; i < w->cfg->max_conns; i++) {
        struct conn *c = &w->conns[i];
        if (c->fd < 0)
            continue;
        if (header_ticks && c->head_pending && !c->read_done && !c->closing &&
            w->tick - c->head_tick >= header_ticks) {
            conn_header_timeout(w, c);
            continue;
        }
        if (idle_ticks == 0 || w->tick - c->last_tick < idle_ticks)
            continue;
        if (!c->closing)
            w->st->idle_closed++;
        conn_close(w, c, true);
    }
}

/* Shutdown: stop reading everywhere; close idle connections now, busy ones after their
 * queued responses (abort=false), or all of them at once (abort=true, the deadline). */
void conns_stop(struct worker *w, bool abort)
{
    uint32_t i;

    for (i = 0; i < w->cfg->max_conns; i++) {
        struct conn *c = &w->conns[i];
        if (c->fd < 0)
            continue;
        c->read_done = true;
        if (abort || (c->outq_len == 0 && !c->send_inflight))
            conn_close(w, c, true);
    }
}
