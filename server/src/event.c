/* event.c - hot path: one worker's loop. One io_uring_enter per iteration submits everything
 * queued and waits for at least one completion; then every completion is handled. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

static void accept_arm(struct worker *w)
{
    struct io_uring_sqe *sqe = uring_sqe(w);

    io_uring_prep_multishot_accept(sqe, w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ud_make(OP_ACCEPT, 0, 0));
    w->accept_armed = true;
}

static void wake_arm(struct worker *w)
{
    struct io_uring_sqe *sqe = uring_sqe(w);

    io_uring_prep_read(sqe, w->wake_fd, &w->wake_value, sizeof(w->wake_value), 0);
    io_uring_sqe_set_data64(sqe, ud_make(OP_WAKE, 0, 0));
}

static void tick_arm(struct worker *w)
{
    struct io_uring_sqe *sqe = uring_sqe(w);

    io_uring_prep_timeout(sqe, &w->tick_ts, 0, 0);
    io_uring_sqe_set_data64(sqe, ud_make(OP_TICK, 0, 0));
}

static void on_accept(struct worker *w, const struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE))
        w->accept_armed = false;
    if (cqe->res >= 0) {
        if (w->fd_episode)
            accept_backoff_end(w);
        if (w->stopping)
            close(cqe->res);
        else
            conn_open(w, cqe->res);
    } else if ((cqe->res == -EMFILE || cqe->res == -ENFILE) && !w->accept_armed && !w->stopping) {
        accept_backoff_begin(w, -cqe->res); /* re-armed by on_tick */
    }
    if (!w->accept_armed && !w->stopping && !w->accept_paused)
        accept_arm(w);
}

static void on_recv(struct worker *w, const struct io_uring_cqe *cqe)
{
    struct conn *c = &w->conns[ud_slot(cqe->user_data)];

    if (c->fd < 0 || (c->gen & ZCB_UD_GEN_MASK) != ud_gen(cqe->user_data))
        return; /* cannot happen: a slot is freed only after its receive ended */
    conn_on_recv(w, c, cqe);
}

static void stop_begin(struct worker *w)
{
    struct io_uring_sqe *sqe;

    w->stopping = true;
    w->stop_tick = w->tick;
    if (w->accept_armed) {
        sqe = uring_sqe(w);
        io_uring_prep_cancel64(sqe, ud_make(OP_ACCEPT, 0, 0), 0);
        io_uring_sqe_set_data64(sqe, ud_make(OP_CANCEL, 0, 0));
    }
    conns_stop(w, false);
}

static void on_tick(struct worker *w)
{
    w->tick++;
    if (w->path_waiting && w->path->tick)
        w->path->tick(w);
    if (w->accept_paused && !w->stopping && (int32_t)(w->tick - w->accept_resume_tick) >= 0) {
        w->accept_paused = false;
        accept_arm(w);
    }
    if (w->stopping && w->tick - w->stop_tick >= ZCB_STOP_GRACE_TICKS)
        conns_stop(w, true);
    else if (w->tick % (1000 / ZCB_TICK_MS) == 0)
        conns_sweep_idle(w);
    tick_arm(w);
}

static void handle_cqe(struct worker *w, const struct io_uring_cqe *cqe)
{
    switch (ud_op(cqe->user_data)) {
    case OP_ACCEPT:
        on_accept(w, cqe);
        break;
    case OP_RECV:
        on_recv(w, cqe);
        break;
    case OP_SEND:
    case OP_SEND_ZC:
    case OP_MSGZC:
    case OP_ERRQUEUE:
    case OP_SPLICE_HEAD:
    case OP_SPLICE_IN:
    case OP_SPLICE_OUT:
        send_on_cqe(w, cqe);
        break;
    case OP_TICK:
        on_tick(w);
        break;
    case OP_WAKE:
        stop_begin(w);
        break;
    case OP_CANCEL:
        break;
    }
}

/* Done when stopping, every connection is gone, accept is cancelled and every zero-copy
 * notification has arrived (so no buffer is still read by the kernel). */
static bool worker_done(struct worker *w)
{
    if (!w->stopping)
        return false;
    if (w->conns_used == 0 && !w->accept_armed && w->st->zc_inflight == 0)
        return true;
    if (w->tick - w->stop_tick >= ZCB_STOP_HARD_TICKS) {
        w->zc_leaked = (uint32_t)w->st->zc_inflight;
        return true;
    }
    return false;
}

static void worker_loop(struct worker *w)
{
    accept_arm(w);
    wake_arm(w);
    tick_arm(w);
    while (!worker_done(w)) {
        struct io_uring_cqe *cqe;
        unsigned head;
        int ret;

        if (w->cfg->stall_ms && !w->stopping)
            calibration_stall(w);
        ret = io_uring_submit_and_wait(&w->ring, 1);

        if (ret < 0 && ret != -EINTR && ret != -EBUSY && ret != -EAGAIN) {
            fprintf(stderr, "zcb-server: worker %d: io_uring_enter: %s\n", w->id, strerror(-ret));
            break;
        }
        io_uring_for_each_cqe(&w->ring, head, cqe) {
            handle_cqe(w, cqe);
            w->cqes_handled++; /* uring_sqe() may release these early, see there */
        }
        io_uring_cq_advance(&w->ring, w->cqes_handled);
        w->cqes_handled = 0;
        w->st->cq_overflows = *w->ring.cq.koverflow;
    }
}

static pthread_mutex_t ready_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready_cond = PTHREAD_COND_INITIALIZER;
int zcb_workers_ready;

static void report_ready(void)
{
    pthread_mutex_lock(&ready_lock);
    zcb_workers_ready++;
    pthread_cond_broadcast(&ready_cond);
    pthread_mutex_unlock(&ready_lock);
}

void workers_wait_ready(int n)
{
    pthread_mutex_lock(&ready_lock);
    while (zcb_workers_ready < n)
        pthread_cond_wait(&ready_cond, &ready_lock);
    pthread_mutex_unlock(&ready_lock);
}

void *worker_main(void *arg)
{
    struct worker *w = arg;

    if (w->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(w->cpu, &set);
        w->setup_error = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
        if (w->setup_error)
            snprintf(w->setup_msg, sizeof(w->setup_msg), "cannot pin to CPU %d: %s", w->cpu,
                     strerror(w->setup_error));
    }
    /* The ring is created here, by the thread that will be its single issuer. */
    if (!w->setup_error)
        w->setup_error = -uring_worker_setup(w);
    report_ready();
    if (!w->setup_error) {
        worker_loop(w);
        accept_backoff_end(w);
        if (!w->stopping)
            kill(getpid(), SIGTERM); /* the loop failed: stop the whole server, report counters */
    }
    return NULL;
}
