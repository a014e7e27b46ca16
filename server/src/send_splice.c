/* send_splice.c - splice: the response bytes come from a copy of the response region in the page
 * cache, sent by IORING_OP_SPLICE through a pipe (file -> pipe -> socket); the head of the first
 * response of each send goes by a regular IORING_OP_SEND before it. No user pages are involved,
 * so the kernel has nothing to pin and nothing it could have to copy on local delivery: the
 * copied share does not apply; `splices` and `splice_bytes` count what the path does.
 *
 * The file is a memfd (tmpfs: page-cache pages without a disk behind them), written once per
 * worker and never mapped. A send is one chain of linked operations:
 *   SEND head (MSG_WAITALL|MSG_MORE)  ->  SPLICE file -> pipe  ->  SPLICE pipe -> socket
 * MSG_WAITALL makes a short head a failure, so the link breaks and no body byte can overtake it.
 * A pipe holds at most its capacity in page references, so a chain moves at most that much (a
 * longer run continues in the next chain, counted as a partial send like any continuation).
 * io_uring runs every splice in an io-wq worker (REQ_F_FORCE_ASYNC); the sockets are blocking,
 * so pipe -> socket waits there for room rather than failing. Bytes left in the pipe by a short
 * or interrupted pipe -> socket are the next bytes of the run: the next chain sends them first.
 * Responses without a body (HEAD, errors) go by a regular send.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "send.h"

struct splice_conn {
    int pipe_r, pipe_w;
    bool has_pipe;
    uint8_t ops;         /* operations of the send in flight still to complete */
    uint32_t pipe_cap;   /* bytes of page references the pipe holds */
    uint32_t in_pipe;    /* bytes in the pipe: the next bytes of the run */
    uint32_t chain_sent; /* bytes of the send in flight that reached the socket */
    int chain_err;       /* its first error */
};

static struct splice_conn *splice_conn(struct worker *w, const struct conn *c)
{
    return (struct splice_conn *)w->path_conns + conn_slot(w, c);
}

/* The page-cache copy of the response region: byte i of the file is byte i of the region. */
static int splice_setup(struct worker *w)
{
    const struct response_set *rs = w->responses;
    size_t done = 0;

    w->path_fd = memfd_create("zcb-responses", MFD_CLOEXEC);
    if (w->path_fd < 0) {
        snprintf(w->setup_msg, sizeof(w->setup_msg), "memfd_create: %s", strerror(errno));
        return -errno;
    }
    while (done < rs->region_len) {
        ssize_t n = pwrite(w->path_fd, rs->region + done, rs->region_len - done, (off_t)done);
        if (n <= 0) {
            snprintf(w->setup_msg, sizeof(w->setup_msg), "writing the responses' file: %s", strerror(errno));
            return -EIO;
        }
        done += (size_t)n;
    }
    return path_conns_map(w, sizeof(struct splice_conn)) ? 0 : -ENOMEM;
}

static void splice_teardown(struct worker *w)
{
    path_conns_unmap(w, sizeof(struct splice_conn));
    if (w->path_fd >= 0)
        close(w->path_fd);
    w->path_fd = -1;
}

static void splice_conn_open(struct worker *w, struct conn *c)
{
    memset(splice_conn(w, c), 0, sizeof(struct splice_conn));
}

static void splice_conn_release(struct worker *w, struct conn *c)
{
    struct splice_conn *sc = splice_conn(w, c);

    if (sc->has_pipe) {
        close(sc->pipe_r);
        close(sc->pipe_w);
        sc->has_pipe = false;
    }
}

static bool pipe_open(struct splice_conn *sc)
{
    int fds[2], cap;

    if (pipe2(fds, O_CLOEXEC) < 0)
        return false;
    cap = fcntl(fds[0], F_GETPIPE_SZ);
    sc->pipe_r = fds[0];
    sc->pipe_w = fds[1];
    sc->pipe_cap = cap > 0 ? (uint32_t)cap : 4096;
    sc->has_pipe = true;
    return true;
}

static bool splice_chooses(struct worker *w, const struct response *r)
{
    (void)w;
    return r->head_len < r->len;
}

static struct io_uring_sqe *chain_op(struct worker *w, struct conn *c, struct splice_conn *sc, enum op_type op)
{
    struct io_uring_sqe *sqe = uring_sqe(w);

    io_uring_sqe_set_data64(sqe, ud_make(op, c->gen, conn_slot(w, c)));
    sc->ops++;
    return sqe;
}

/* pipe -> socket: the last operation of every chain. */
static void chain_out(struct worker *w, struct conn *c, struct splice_conn *sc, uint32_t n)
{
    io_uring_prep_splice(chain_op(w, c, sc, OP_SPLICE_OUT), sc->pipe_r, -1, c->fd, -1, n, 0);
}

static void splice_submit(struct worker *w, struct conn *c, const struct response *r, const char *p, uint32_t len,
                          uint32_t pages)
{
    struct splice_conn *sc = splice_conn(w, c);
    uint32_t head = c->out_off < r->head_len ? r->head_len - c->out_off : 0, page = 1u << w->page_shift, n;
    uint64_t off = (uint64_t)(p - w->responses->region) + head;
    struct io_uring_sqe *sqe;

    (void)pages;
    if (!sc->has_pipe && !pipe_open(sc)) {
        send_regular(w, c, p, len); /* out of file descriptors for a pipe: this send copies */
        return;
    }
    send_started(c, len); /* the run's remaining bytes: a chain that moves fewer is a partial send */
    sc->chain_sent = 0;
    sc->chain_err = 0;
    if (sc->in_pipe) {
        chain_out(w, c, sc, sc->in_pipe);
        return;
    }
    if (head) {
        sqe = chain_op(w, c, sc, OP_SPLICE_HEAD);
        io_uring_prep_send(sqe, c->fd, p, head, MSG_NOSIGNAL | MSG_WAITALL | MSG_MORE);
        sqe->flags |= IOSQE_IO_LINK;
    }
    /* as many bytes as the pipe holds page references for, counting the first page's offset */
    n = sc->pipe_cap - (uint32_t)(off & (page - 1));
    n = len - head < n ? len - head : n;
    sqe = chain_op(w, c, sc, OP_SPLICE_IN);
    io_uring_prep_splice(sqe, w->path_fd, (int64_t)off, sc->pipe_w, -1, n, 0);
    sqe->flags |= IOSQE_IO_LINK;
    chain_out(w, c, sc, n);
}

/* Every operation of the chain has completed: account what reached the socket. */
static void chain_done(struct worker *w, struct conn *c, struct splice_conn *sc)
{
    w->st->splices++;
    if (sc->chain_sent) {
        send_finished(w, c, (int)sc->chain_sent);
    } else if (sc->chain_err) {
        send_finished(w, c, sc->chain_err);
    } else if (sc->in_pipe) {
        c->send_inflight = false; /* file -> pipe went, pipe -> socket was cut short: send on */
        send_next(w, c);
    } else {
        send_finished(w, c, -EIO);
    }
}

static void splice_complete(struct worker *w, const struct io_uring_cqe *cqe)
{
    struct conn *c = send_conn(w, cqe->user_data);
    struct splice_conn *sc;
    int res = cqe->res;

    if (!c)
        return;
    sc = splice_conn(w, c);
    if (res > 0) {
        switch (ud_op(cqe->user_data)) {
        case OP_SPLICE_HEAD:
            sc->chain_sent += (uint32_t)res;
            break;
        case OP_SPLICE_IN:
            sc->in_pipe += (uint32_t)res;
            break;
        default:
            sc->in_pipe -= (uint32_t)res;
            sc->chain_sent += (uint32_t)res;
            w->st->splice_bytes += (uint64_t)res;
            break;
        }
    } else if (res < 0 && res != -ECANCELED && !sc->chain_err) {
        sc->chain_err = res; /* -ECANCELED: an earlier link failed, its error is the one */
    }
    if (--sc->ops == 0)
        chain_done(w, c, sc);
}

const struct send_path send_path_SPLICE = {
    .setup = splice_setup,
    .teardown = splice_teardown,
    .conn_open = splice_conn_open,
    .conn_release = splice_conn_release,
    .chooses = splice_chooses,
    .submit = splice_submit,
    .complete = splice_complete,
};
