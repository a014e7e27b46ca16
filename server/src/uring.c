/* uring.c - cold path: per-worker ring, listener wake-up, provided buffers, registered buffers. */
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

#define ZCB_SQ_ENTRIES 4096
#define ZCB_CQ_ENTRIES 32768
#define ZCB_SQE_TRIES 1000 /* flushes (1 ms apart when failing) before uring_sqe() gives up */

/*
 * Ring flags, best first. SINGLE_ISSUER + DEFER_TASKRUN run completions' task work only
 * when this thread enters the kernel (one io_uring_enter per loop does both); older kernels
 * refuse them with EINVAL and get the next set.
 */
static const unsigned ring_flag_sets[] = {
    IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
    IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
    IORING_SETUP_CQSIZE,
};

static uint64_t pages_of(size_t bytes, uint32_t page_shift)
{
    return (bytes + ((size_t)1 << page_shift) - 1) >> page_shift;
}

static int ring_create(struct worker *w)
{
    size_t i;
    int ret = -EINVAL;

    for (i = 0; i < sizeof(ring_flag_sets) / sizeof(ring_flag_sets[0]); i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof(p));
        p.flags = ring_flag_sets[i];
        p.cq_entries = ZCB_CQ_ENTRIES;
        ret = io_uring_queue_init_params(ZCB_SQ_ENTRIES, &w->ring, &p);
        if (ret == 0) {
            /* Charged to memlock since 6.13 when CAP_IPC_LOCK is absent: the SQ/CQ rings (one
             * mapping or two) and the SQE array. */
            size_t rings = w->ring.sq.ring_sz > w->ring.cq.ring_sz ? w->ring.sq.ring_sz : w->ring.cq.ring_sz;
            if (!(p.features & IORING_FEAT_SINGLE_MMAP))
                rings = w->ring.sq.ring_sz + w->ring.cq.ring_sz;
            w->ring_flags = p.flags;
            w->ring_pages = pages_of(rings, w->page_shift) +
                            pages_of((size_t)w->ring.sq.ring_entries * sizeof(struct io_uring_sqe), w->page_shift);
            return 0;
        }
        if (ret != -EINVAL)
            break;
    }
    snprintf(w->setup_msg, sizeof(w->setup_msg), "io_uring_queue_init: %s%s", strerror(-ret),
             ret == -EPERM ? " (io_uring disabled by sysctl or seccomp?)" :
             ret == -ENOMEM ? " (RLIMIT_MEMLOCK too low for the rings?)" : "");
    return ret;
}

static int provided_buffers_setup(struct worker *w)
{
    struct io_uring_buf_reg reg;
    size_t ring_bytes = ZCB_RECV_BUFS * sizeof(struct io_uring_buf);
    int ret, i, mask = io_uring_buf_ring_mask(ZCB_RECV_BUFS);

    w->buf_ring = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    w->recv_bufs = mmap(NULL, (size_t)ZCB_RECV_BUFS * ZCB_RECV_BUF_SIZE, PROT_READ | PROT_WRITE,
                        MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (w->buf_ring == MAP_FAILED || w->recv_bufs == MAP_FAILED) {
        w->buf_ring = NULL;
        w->recv_bufs = NULL;
        snprintf(w->setup_msg, sizeof(w->setup_msg), "cannot map receive buffers");
        return -ENOMEM;
    }
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (unsigned long)w->buf_ring;
    reg.ring_entries = ZCB_RECV_BUFS;
    reg.bgid = ZCB_RECV_BGID;
    ret = io_uring_register_buf_ring(&w->ring, &reg, 0);
    w->ring_pages += pages_of(ring_bytes, w->page_shift); /* pinned and charged like the rings */
    if (ret) {
        snprintf(w->setup_msg, sizeof(w->setup_msg), "io_uring_register_buf_ring: %s", strerror(-ret));
        return ret;
    }
    io_uring_buf_ring_init(w->buf_ring);
    for (i = 0; i < ZCB_RECV_BUFS; i++)
        io_uring_buf_ring_add(w->buf_ring, w->recv_bufs + (size_t)i * ZCB_RECV_BUF_SIZE, ZCB_RECV_BUF_SIZE,
                              (unsigned short)i, mask, i);
    io_uring_buf_ring_advance(w->buf_ring, ZCB_RECV_BUFS);
    return 0;
}

/* The kernel's net.core.optmem_max for this network namespace, in bytes (-1: unreadable). */
static long optmem_max(void)
{
    FILE *f = fopen("/proc/sys/net/core/optmem_max", "re");
    long v = -1;

    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/*
 * msg-zerocopy's per-socket budget, in unnotified sends: each holds about ZCB_OPTMEM_PER_NOTIF
 * bytes of its socket's option memory until its notification is read, and past optmem_max the
 * kernel refuses the next MSG_ZEROCOPY sendmsg with ENOBUFS. Auto: optmem_max of the server's
 * network namespace (per namespace since Linux 6.x; read at start); at least one send.
 */
static int zc_optmem_setup(struct worker *w)
{
    int64_t bytes = w->cfg->zc_optmem_budget;

    w->zc_optmem_sends = 0;
    if (w->cfg->send_mode != SEND_MSG_ZEROCOPY || bytes == 0)
        return 0;
    if (bytes < 0)
        bytes = optmem_max();
    if (bytes < 0) {
        snprintf(w->setup_msg, sizeof(w->setup_msg), "cannot read net.core.optmem_max for the optmem budget "
                 "(give --zc-optmem-budget BYTES, or 0 for none)");
        return -ENOENT;
    }
    w->zc_optmem_sends = (uint64_t)bytes / ZCB_OPTMEM_PER_NOTIF;
    if (w->zc_optmem_sends > ZCB_MSGZC_PENDING_MAX)
        w->zc_optmem_sends = ZCB_MSGZC_PENDING_MAX;
    if (w->zc_optmem_sends == 0)
        w->zc_optmem_sends = 1; /* below one notification's worth every send may get ENOBUFS */
    w->st->zc_optmem_budget = w->zc_optmem_sends;
    return 0;
}

static int conn_table_setup(struct worker *w)
{
    uint32_t i, n = w->cfg->max_conns;

    w->conns = calloc(n, sizeof(*w->conns));
    w->rbufs = mmap(NULL, (size_t)n * ZCB_RBUF_SIZE, PROT_READ | PROT_WRITE,
                    MAP_ANONYMOUS | MAP_PRIVATE | MAP_NORESERVE, -1, 0);
    if (!w->conns || w->rbufs == MAP_FAILED) {
        w->rbufs = NULL;
        snprintf(w->setup_msg, sizeof(w->setup_msg), "cannot allocate %u connection slots", n);
        return -ENOMEM;
    }
    for (i = 0; i < n; i++) {
        w->conns[i].fd = -1;
        w->conns[i].next_free = (i + 1 < n) ? (int)(i + 1) : -1;
    }
    w->free_head = 0;
    return 0;
}

bool thread_has_ipc_lock(void)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];

    if (syscall(SYS_capget, &hdr, data))
        return false;
    return data[CAP_TO_INDEX(CAP_IPC_LOCK)].effective & CAP_TO_MASK(CAP_IPC_LOCK);
}

/*
 * The memlock budget of this worker's zero-copy sends, in pages. The kernel charges each SEND_ZC
 * from a plain buffer (len >> PAGE_SHIFT) + 2 pages of the ring creator's RLIMIT_MEMLOCK until
 * its notification, and refuses with ENOMEM past the limit; it charges nothing when the creator
 * holds CAP_IPC_LOCK. The limit is per user: every worker shares it, and so do the rings, which
 * are charged too. Auto: (limit - rings of all workers - a margin for the rest of the user's
 * locked memory) / workers.
 */
static int zc_budget_setup(struct worker *w)
{
    const struct zcb_config *cfg = w->cfg;
    struct rlimit rl;
    uint64_t limit_pages, reserved;

    w->zc_page_budget = 0;
    if (!w->path->pages || cfg->zc_page_budget == 0)
        return 0; /* the path's sends are not charged per send (zc-fixed, regular, splice) */
    if (cfg->zc_page_budget > 0) {
        w->zc_page_budget = (uint64_t)cfg->zc_page_budget;
    } else {
        if (thread_has_ipc_lock() || getrlimit(RLIMIT_MEMLOCK, &rl) || rl.rlim_cur == RLIM_INFINITY)
            return 0; /* not charged, or no limit: nothing to budget */
        limit_pages = rl.rlim_cur >> w->page_shift;
        reserved = (uint64_t)cfg->nworkers * w->ring_pages + ZCB_MEMLOCK_MARGIN(limit_pages);
        if (limit_pages < reserved + (uint64_t)cfg->nworkers * ((cfg->response_size >> w->page_shift) + 2)) {
            snprintf(w->setup_msg, sizeof(w->setup_msg),
                     "RLIMIT_MEMLOCK of %llu pages, %llu for rings and margin: no room for zero-copy "
                     "sends (raise it, or --zc-page-budget 0)",
                     (unsigned long long)limit_pages, (unsigned long long)reserved);
            return -ENOMEM;
        }
        w->zc_page_budget = (limit_pages - reserved) / (uint64_t)cfg->nworkers;
    }
    w->st->zc_page_budget = w->zc_page_budget;
    return 0;
}

int uring_worker_setup(struct worker *w)
{
    int ret;

    w->page_shift = (uint32_t)__builtin_ctzl((unsigned long)sysconf(_SC_PAGESIZE));
    w->wake_fd = eventfd(0, EFD_CLOEXEC);
    if (w->wake_fd < 0) {
        snprintf(w->setup_msg, sizeof(w->setup_msg), "eventfd: %s", strerror(errno));
        return -errno;
    }
    accept_reserve_open(w);
    ret = conn_table_setup(w);
    if (!ret)
        ret = ring_create(w);
    if (!ret)
        ret = provided_buffers_setup(w);
    if (!ret && w->path->setup)
        ret = w->path->setup(w);
    if (!ret)
        ret = zc_budget_setup(w);
    if (!ret)
        ret = zc_optmem_setup(w);
    return ret;
}

void uring_worker_teardown(struct worker *w)
{
    if (w->path->teardown)
        w->path->teardown(w);
    if (w->ring.ring_fd > 0)
        io_uring_queue_exit(&w->ring);
    if (w->buf_ring)
        munmap(w->buf_ring, ZCB_RECV_BUFS * sizeof(struct io_uring_buf));
    if (w->recv_bufs)
        munmap(w->recv_bufs, (size_t)ZCB_RECV_BUFS * ZCB_RECV_BUF_SIZE);
    if (w->rbufs)
        munmap(w->rbufs, (size_t)w->cfg->max_conns * ZCB_RBUF_SIZE);
    free(w->conns);
    if (w->wake_fd >= 0)
        close(w->wake_fd);
    if (w->reserve_fd >= 0)
        close(w->reserve_fd);
}

/* An SQE, flushing the submission queue to the kernel first if it is full. The flush fails with
 * EBUSY while the completion queue is full, so the completions this loop pass has already
 * handled are released first. If it keeps failing for about a second the ring is unusable and
 * the server exits rather than spinning for ever. */
struct io_uring_sqe *uring_sqe(struct worker *w)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
    int tries, ret = 0;

    if (sqe == NULL && w->cqes_handled) {
        io_uring_cq_advance(&w->ring, w->cqes_handled);
        w->cqes_handled = 0;
    }
    for (tries = 0; sqe == NULL && tries < ZCB_SQE_TRIES; tries++) {
        ret = io_uring_submit(&w->ring);
        sqe = io_uring_get_sqe(&w->ring);
        if (sqe == NULL && ret < 0) {
            struct timespec pause = { 0, 1000000 }; /* 1 ms */
            nanosleep(&pause, NULL);
        }
    }
    if (sqe == NULL) {
        fprintf(stderr, "zcb-server: worker %d: no submission queue entry after %d flushes (last: %s); "
                        "giving up\n", w->id, ZCB_SQE_TRIES, ret < 0 ? strerror(-ret) : "no progress");
        exit(1);
    }
    return sqe;
}

/* The io_uring opcodes and socket options a mode may need (zcb_modes.h's `needs`). */
static const struct { const char *name; int opcode; } needed_opcodes[] = {
    { "SEND", IORING_OP_SEND },
    { "SEND_ZC", IORING_OP_SEND_ZC },
    { "SENDMSG", IORING_OP_SENDMSG },
    { "RECVMSG", IORING_OP_RECVMSG },
    { "SENDMSG_ZC", IORING_OP_SENDMSG_ZC },
    { "SPLICE", IORING_OP_SPLICE },
};

static bool socket_option_works(int option)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    bool ok = fd >= 0 && setsockopt(fd, SOL_SOCKET, option, &one, sizeof(one)) == 0;

    if (fd >= 0)
        close(fd);
    return ok;
}

static bool has_need(const struct io_uring_probe *probe, const char *need, char *why, size_t whylen)
{
    size_t i;

    if (strcmp(need, "SO_ZEROCOPY") == 0) {
        if (socket_option_works(SO_ZEROCOPY))
            return true;
        snprintf(why, whylen, "setsockopt(SO_ZEROCOPY) on a TCP socket fails: %s", strerror(errno));
        return false;
    }
    for (i = 0; i < sizeof(needed_opcodes) / sizeof(needed_opcodes[0]); i++) {
        if (strcmp(need, needed_opcodes[i].name) != 0)
            continue;
        if (io_uring_opcode_supported(probe, needed_opcodes[i].opcode))
            return true;
        snprintf(why, whylen, "this kernel lacks IORING_OP_%s", need);
        return false;
    }
    snprintf(why, whylen, "zcb_modes.h names an unknown need '%s'", need);
    return false;
}

/* Does the running kernel offer everything in `needs` (space-separated, zcb_modes.h)? If not,
 * `why` says what is missing. Nothing is sent. */
bool uring_kernel_has_needs(const char *needs, char *why, size_t whylen)
{
    struct io_uring_probe *probe = io_uring_get_probe();
    char need[32];
    bool ok = true;

    if (probe == NULL) {
        snprintf(why, whylen, "cannot probe io_uring opcodes (io_uring unavailable?)");
        return false;
    }
    while (ok && *needs) {
        size_t n = strcspn(needs, " ");
        snprintf(need, sizeof(need), "%.*s", (int)n, needs);
        ok = has_need(probe, need, why, whylen);
        needs += n + (needs[n] == ' ');
    }
    io_uring_free_probe(probe);
    return ok;
}

/*
 * Does SEND_ZC accept IORING_SEND_ZC_REPORT_USAGE (Linux 6.2+)? The flags are checked when the
 * request is prepared, before its file is looked up: with fd -1 a kernel that knows the flag
 * fails with EBADF, one that does not with EINVAL. Nothing is sent. Returns 1 or 0, or -errno
 * when no ring could be made to ask.
 */
int uring_kernel_has_zc_report_usage(void)
{
    struct io_uring ring;
    struct io_uring_sqe *sqe;
    struct io_uring_cqe *cqe;
    static const char byte = 0;
    int ret = io_uring_queue_init(2, &ring, 0);

    if (ret)
        return ret;
    sqe = io_uring_get_sqe(&ring);
    io_uring_prep_send_zc(sqe, -1, &byte, 1, MSG_NOSIGNAL, IORING_SEND_ZC_REPORT_USAGE);
    ret = io_uring_submit_and_wait(&ring, 1);
    if (ret >= 0)
        ret = io_uring_peek_cqe(&ring, &cqe);
    if (ret >= 0)
        ret = cqe->res == -EINVAL ? 0 : 1;
    io_uring_queue_exit(&ring);
    return ret;
}
