/* send_zc.c - zc: IORING_OP_SEND_ZC from the plain response region; zc-fixed: the same from the
 * region registered with the ring once (IORING_RECVSEND_FIXED_BUF). The completion here is
 * shared by every io_uring zero-copy send (sendmsg-zc and adaptive use it too).
 *
 * A SEND_ZC yields a result CQE and, when that CQE has IORING_CQE_F_MORE, a later notification
 * CQE (IORING_CQE_F_NOTIF) once the kernel no longer reads the buffer. The in-flight count
 * follows those flags, not `res`: a failed SEND_ZC may still carry F_MORE and be notified later.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "send.h"

unsigned zc_send_flags(const struct worker *w)
{
    return w->cfg->zc_report_usage ? IORING_SEND_ZC_REPORT_USAGE : 0;
}

static void zc_started(struct worker *w, struct conn *c, struct io_uring_sqe *sqe, uint32_t len, uint32_t pages)
{
    io_uring_sqe_set_data64(sqe, ud_make_charged(OP_SEND_ZC, c->gen, pages, conn_slot(w, c)));
    send_started(c, len);
    zc_hold(w, pages);
}

void zc_send_submit(struct worker *w, struct conn *c, const struct response *r, const char *p, uint32_t len,
                    uint32_t pages)
{
    struct io_uring_sqe *sqe = uring_sqe(w);

    (void)r;
    io_uring_prep_send_zc(sqe, c->fd, p, len, MSG_NOSIGNAL, zc_send_flags(w));
    zc_started(w, c, sqe, len, pages);
}

static void zc_fixed_submit(struct worker *w, struct conn *c, const struct response *r, const char *p,
                            uint32_t len, uint32_t pages)
{
    struct io_uring_sqe *sqe = uring_sqe(w);

    (void)r;
    io_uring_prep_send_zc_fixed(sqe, c->fd, p, len, MSG_NOSIGNAL, zc_send_flags(w), 0);
    zc_started(w, c, sqe, len, pages);
}

void zc_send_complete(struct worker *w, const struct io_uring_cqe *cqe)
{
    uint64_t ud = cqe->user_data;
    struct conn *c;
    int res = cqe->res;

    if (cqe->flags & IORING_CQE_F_NOTIF) {
        /* The kernel released the buffer: no connection state is touched. */
        w->st->zc_notifs++;
        if ((uint32_t)res & IORING_NOTIF_USAGE_ZC_COPIED)
            w->st->zc_copied++;
        zc_release(w, 1, ud_pages(ud));
        return;
    }
    w->st->sends_zc++;
    if (!(cqe->flags & IORING_CQE_F_MORE))
        zc_release(w, 1, ud_pages(ud));
    c = send_conn(w, ud);
    if (!c)
        return;
    if (res == -ENOMEM) {
        /* The memlock charge for this send failed: resend the same bytes the regular way. */
        w->st->zc_enomem++;
        send_refused(w, c, res, &w->st->fallback_enomem);
        return;
    }
    send_finished(w, c, res);
}

/* zc-fixed sends from the response region registered once here: the kernel pins (and charges
 * memlock for) it at registration instead of per send. */
static int zc_fixed_setup(struct worker *w)
{
    struct iovec iov = { .iov_base = w->responses->region, .iov_len = w->responses->region_len };
    int ret = io_uring_register_buffers(&w->ring, &iov, 1);

    if (ret)
        snprintf(w->setup_msg, sizeof(w->setup_msg), "io_uring_register_buffers (%zu bytes): %s%s",
                 iov.iov_len, strerror(-ret), ret == -ENOMEM ? " (RLIMIT_MEMLOCK too low?)" : "");
    return ret;
}

const struct send_path send_path_ZC = {
    .pages = zc_pages_for,
    .submit = zc_send_submit,
    .complete = zc_send_complete,
    .capped = true,
    .report_usage = true,
};

const struct send_path send_path_ZC_FIXED = {
    .setup = zc_fixed_setup,
    .submit = zc_fixed_submit,
    .complete = zc_send_complete,
    .capped = true,
    .report_usage = true,
};
