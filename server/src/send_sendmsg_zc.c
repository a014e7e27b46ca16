/* send_sendmsg_zc.c - sendmsg-zc: IORING_OP_SENDMSG_ZC with each response's head and body in
 * iovecs of their own, the way a server sends headers built per request beside a payload held
 * elsewhere. A coalesced run of n responses is 2n iovecs (n for bodiless ones). It is charged
 * to memlock like SEND_ZC, (total len >> PAGE_SHIFT) + 2 pages, and completes the same way.
 *
 * The msghdr and its iovecs are the connection's own, kept until the send completes: kernels
 * since 5.5 (IORING_FEAT_SUBMIT_STABLE) copy them at submission, older ones may read them later.
 */
#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "send.h"

struct sendmsg_conn {
    struct msghdr msg;
    struct iovec iov[2 * ZCB_COALESCE_MAX];
};

static int sendmsg_setup(struct worker *w)
{
    return path_conns_map(w, sizeof(struct sendmsg_conn)) ? 0 : -ENOMEM;
}

static void sendmsg_teardown(struct worker *w)
{
    path_conns_unmap(w, sizeof(struct sendmsg_conn));
}

/* The iovecs of len bytes of the run at r from offset `off` of its first copy: head and body of
 * each copy apart. */
static unsigned run_iovecs(struct iovec *iov, const struct response *r, uint32_t off, uint32_t len)
{
    const char *copy = r->data;
    unsigned k = 0;

    while (len > 0) {
        uint32_t end = off < r->head_len ? r->head_len : r->len, n = end - off < len ? end - off : len;
        iov[k].iov_base = (void *)(copy + off);
        iov[k++].iov_len = n;
        len -= n;
        off += n;
        if (off == r->len) {
            copy += r->len;
            off = 0;
        }
    }
    return k;
}

static void sendmsg_submit(struct worker *w, struct conn *c, const struct response *r, const char *p, uint32_t len,
                           uint32_t pages)
{
    struct sendmsg_conn *sc = (struct sendmsg_conn *)w->path_conns + conn_slot(w, c);
    struct io_uring_sqe *sqe = uring_sqe(w);

    (void)p;
    sc->msg = (struct msghdr){ .msg_iov = sc->iov, .msg_iovlen = run_iovecs(sc->iov, r, c->out_off, len) };
    io_uring_prep_sendmsg_zc(sqe, c->fd, &sc->msg, MSG_NOSIGNAL);
    sqe->ioprio |= zc_send_flags(w);
    io_uring_sqe_set_data64(sqe, ud_make_charged(OP_SEND_ZC, c->gen, pages, conn_slot(w, c)));
    send_started(c, len);
    zc_hold(w, pages);
}

const struct send_path send_path_SENDMSG_ZC = {
    .setup = sendmsg_setup,
    .teardown = sendmsg_teardown,
    .pages = zc_pages_for,
    .submit = sendmsg_submit,
    .complete = zc_send_complete,
    .capped = true,
    .report_usage = true,
};
