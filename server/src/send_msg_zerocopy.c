/* send_msg_zerocopy.c - msg-zerocopy: sendmsg(MSG_ZEROCOPY) on an SO_ZEROCOPY socket, through
 * io_uring. The kernel passes it on unchanged: io_sendmsg_prep() keeps sqe->msg_flags (adding only
 * MSG_NOSIGNAL) and tcp_sendmsg_locked() sees MSG_ZEROCOPY; the completions are read from the
 * socket's error queue by IORING_OP_RECVMSG with MSG_ERRQUEUE, which io_recvmsg_prep() marks
 * REQ_F_CLEAR_POLLIN so the request waits for EPOLLERR (a notification) rather than for data
 * (checked in the kernel's io_uring/net.c; the server's tests exercise it on this kernel). So no
 * plain-syscall worker is needed: both the send and the notifications go through the ring.
 *
 * Every sendmsg that sends at least one byte takes the socket's next id (sk_zckey, from 0; a
 * failed one gives it back). A notification is a range of ids ee_info..ee_data, with
 * SO_EE_CODE_ZEROCOPY_COPIED when the kernel copied after all (every range on loopback). Ranges
 * of consecutive completions merge into one notification, keeping the first one's code. The
 * socket's notifications are charged to its option memory, net.core.optmem_max of its network
 * namespace: past it sendmsg fails with ENOBUFS; so does it past RLIMIT_MEMLOCK, which
 * MSG_ZEROCOPY is charged like SEND_ZC ((len >> PAGE_SHIFT) + 2 pages, without CAP_IPC_LOCK).
 * ENOBUFS is resent regular. The per-socket optmem budget keeps a socket's unnotified sends
 * below optmem_max; the worker's memlock page budget and in-flight cap apply as to SEND_ZC.
 *
 * Notifications die with the socket, so a connection's slot waits for all of its own (a
 * closing TCP socket still gets them once its data is acknowledged or reset).
 */
#include <errno.h>
#include <time.h> /* linux/errqueue.h needs struct timespec */
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "send.h"

#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY 5
#endif
#ifndef SO_EE_CODE_ZEROCOPY_COPIED
#define SO_EE_CODE_ZEROCOPY_COPIED 1
#endif


struct msgzc_conn {
    struct msghdr send_msg, errq_msg;
    struct iovec iov;
    uint64_t control[16]; /* 128 bytes: one IP(V6)_RECVERR cmsg with its offender address */
    uint32_t next_id;     /* the id the kernel gives this socket's next zero-copy send */
    uint32_t pending;     /* ids sent and not notified yet */
    bool errq_armed;
    bool errq_later;      /* the read came back empty on a hung-up socket: re-armed at the tick */
    bool refused;         /* SO_ZEROCOPY was refused: this connection sends regular */
    uint32_t pages[ZCB_MSGZC_PENDING_MAX]; /* memlock pages of each pending id, at its id modulo */
};

static struct msgzc_conn *msgzc_conn(struct worker *w, const struct conn *c)
{
    return (struct msgzc_conn *)w->path_conns + conn_slot(w, c);
}

static int msgzc_setup(struct worker *w)
{
    return path_conns_map(w, sizeof(struct msgzc_conn)) ? 0 : -ENOMEM;
}

static void msgzc_teardown(struct worker *w)
{
    path_conns_unmap(w, sizeof(struct msgzc_conn));
}

static void msgzc_conn_open(struct worker *w, struct conn *c)
{
    struct msgzc_conn *mc = msgzc_conn(w, c);
    int one = 1;

    memset(mc, 0, sizeof(*mc));
    mc->refused = setsockopt(c->fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)) != 0;
}

static bool msgzc_conn_busy(const struct worker *w, const struct conn *c)
{
    const struct msgzc_conn *mc = (const struct msgzc_conn *)w->path_conns + conn_slot(w, c);

    return mc->pending > 0 || mc->errq_armed || mc->errq_later;
}

/* Wait for the socket's next notification while any of its sends is unnotified. */
static void errq_arm(struct worker *w, struct conn *c, struct msgzc_conn *mc)
{
    struct io_uring_sqe *sqe;

    if (mc->errq_armed || mc->pending == 0)
        return;
    sqe = uring_sqe(w);
    mc->errq_msg = (struct msghdr){ .msg_control = mc->control, .msg_controllen = sizeof(mc->control) };
    io_uring_prep_recvmsg(sqe, c->fd, &mc->errq_msg, MSG_ERRQUEUE);
    io_uring_sqe_set_data64(sqe, ud_make(OP_ERRQUEUE, c->gen, conn_slot(w, c)));
    mc->errq_armed = true;
}

static void msgzc_submit(struct worker *w, struct conn *c, const struct response *r, const char *p, uint32_t len,
                         uint32_t pages)
{
    struct msgzc_conn *mc = msgzc_conn(w, c);
    struct io_uring_sqe *sqe;

    (void)r;
    if (mc->refused || mc->pending + 1 > ZCB_MSGZC_PENDING_MAX ||
        (w->zc_optmem_sends && mc->pending + 1 > w->zc_optmem_sends)) {
        w->st->fallback_optmem++;
        send_regular(w, c, p, len);
        return;
    }
    sqe = uring_sqe(w);
    mc->iov = (struct iovec){ (void *)p, len };
    mc->send_msg = (struct msghdr){ .msg_iov = &mc->iov, .msg_iovlen = 1 };
    io_uring_prep_sendmsg(sqe, c->fd, &mc->send_msg, MSG_ZEROCOPY | MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud_make_charged(OP_MSGZC, c->gen, pages, conn_slot(w, c)));
    send_started(c, len);
    zc_hold(w, pages);
}

static void send_complete(struct worker *w, const struct io_uring_cqe *cqe)
{
    struct conn *c = send_conn(w, cqe->user_data);
    uint32_t pages = ud_pages(cqe->user_data);
    struct msgzc_conn *mc;
    int res = cqe->res;

    w->st->sends_zc++;
    if (!c)
        return;
    mc = msgzc_conn(w, c);
    if (res > 0) {
        /* it took the next id: its pages stay charged until a notification covers it */
        mc->pages[mc->next_id++ % ZCB_MSGZC_PENDING_MAX] = pages;
        mc->pending++;
        errq_arm(w, c, mc);
        send_finished(w, c, res);
        return;
    }
    zc_release(w, 1, pages); /* no id taken: nothing will be notified */
    if (res == -ENOBUFS) {
        w->st->zc_enobufs++;
        send_refused(w, c, res, &w->st->fallback_enobufs);
        return;
    }
    send_finished(w, c, res);
}

/* One notification: the sends lo..hi are released. */
static void notified(struct worker *w, struct msgzc_conn *mc, const struct sock_extended_err *ee)
{
    uint32_t lo = ee->ee_info, n = ee->ee_data - lo + 1, i;
    uint64_t pages = 0;

    if (n > mc->pending)
        n = mc->pending; /* cannot happen: the kernel notifies only ids it gave */
    for (i = 0; i < n; i++)
        pages += mc->pages[(lo + i) % ZCB_MSGZC_PENDING_MAX];
    mc->pending -= n;
    w->st->zc_notifs += n;
    if (ee->ee_code & SO_EE_CODE_ZEROCOPY_COPIED)
        w->st->zc_copied += n;
    w->st->errqueue_reads++;
    zc_release(w, n, pages);
}

static void errq_complete(struct worker *w, const struct io_uring_cqe *cqe)
{
    struct conn *c = send_conn(w, cqe->user_data);
    struct msgzc_conn *mc;
    struct cmsghdr *cm;

    if (!c)
        return;
    mc = msgzc_conn(w, c);
    mc->errq_armed = false;
    if (cqe->res >= 0) {
        for (cm = CMSG_FIRSTHDR(&mc->errq_msg); cm; cm = CMSG_NXTHDR(&mc->errq_msg, cm)) {
            const struct sock_extended_err *ee = (const struct sock_extended_err *)CMSG_DATA(cm);
            if (((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) ||
                 (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_RECVERR)) &&
                ee->ee_origin == SO_EE_ORIGIN_ZEROCOPY && ee->ee_errno == 0)
                notified(w, mc, ee);
        }
    }
    if (cqe->res >= 0 || cqe->res == -EINTR) {
        errq_arm(w, c, mc);
    } else if (cqe->res == -EAGAIN && mc->pending && !mc->errq_later) {
        /* Once both directions are shut, the socket polls EPOLLHUP: io_uring's wait for an error
         * queue entry ends at once, empty. Its notifications still come (when its data is
         * acknowledged or reset); re-arming now would spin, so wait for the next tick. */
        mc->errq_later = true;
        w->path_waiting++;
    }
    if (c->closing)
        conn_maybe_free(w, c);
}

/* Every tick: re-arm the error-queue reads that came back empty. */
static void msgzc_tick(struct worker *w)
{
    uint32_t i;

    for (i = 0; i < w->cfg->max_conns && w->path_waiting; i++) {
        struct conn *c = &w->conns[i];
        struct msgzc_conn *mc = msgzc_conn(w, c);
        if (c->fd < 0 || !mc->errq_later)
            continue;
        mc->errq_later = false;
        w->path_waiting--;
        errq_arm(w, c, mc);
    }
}

static void msgzc_complete(struct worker *w, const struct io_uring_cqe *cqe)
{
    if (ud_op(cqe->user_data) == OP_ERRQUEUE)
        errq_complete(w, cqe);
    else
        send_complete(w, cqe);
}

const struct send_path send_path_MSG_ZEROCOPY = {
    .setup = msgzc_setup,
    .teardown = msgzc_teardown,
    .conn_open = msgzc_conn_open,
    .conn_busy = msgzc_conn_busy,
    .tick = msgzc_tick,
    .pages = zc_pages_for,
    .submit = msgzc_submit,
    .complete = msgzc_complete,
    .capped = true,
    .copies_told = true,
};
