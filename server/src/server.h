/* server.h - types shared by the server's parts: configuration, responses, connections, workers. */
#ifndef ZCB_SERVER_H
#define ZCB_SERVER_H

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "zcb_modes.h"
#include "zcb_stats.h"

/* liburing 2.3 predates these (kernel 6.2 uapi): ask the notification to say whether the
 * kernel had to copy after all. Kernels 6.0 and 6.1 refuse the flag (EINVAL). */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

#define ZCB_MAX_WORKERS 64
#define ZCB_RBUF_SIZE 8192       /* per-connection receive buffer: the largest request head */
#define ZCB_RECV_BUF_SIZE 4096   /* one provided buffer of the multishot receive */
#define ZCB_RECV_BUFS 4096       /* provided buffers per worker (a power of two) */
#define ZCB_OUTQ_SLOTS 32        /* queued runs of equal responses per connection */
#define ZCB_RECV_BGID 1          /* buffer group of the provided receive buffers */
#define ZCB_TICK_MS 100          /* timer period: idle timeout and shutdown deadline */
#define ZCB_STOP_GRACE_TICKS 12  /* let sends in progress finish for 1.2 s after SIGTERM */
#define ZCB_STOP_HARD_TICKS 18   /* give up waiting for notifications at 1.8 s */
/* Memlock pages kept out of the zero-copy budget for the user's other locked memory. */
#define ZCB_MEMLOCK_MARGIN(limit_pages) ((limit_pages) / 16 > 32 ? (limit_pages) / 16 : 32)
#define ZCB_ACCEPT_BACKOFF_TICKS 2 /* pause accepting 200 ms when out of file descriptors */
/* Pipelined requests of one kind are answered by one send from a run of identical responses
 * laid back to back: at most this many per send, and about this many bytes per run. */
#define ZCB_COALESCE_MAX 64
#define ZCB_COALESCE_BYTES (64 * 1024)

/* The send modes, from the one list zcbench reads too (include/zcb_modes.h). */
#define ZCB_MODE_ENUM(id, name, zero_copy, registered, user_pages, limit, kernel, needs, title) SEND_##id,
enum send_mode { ZCB_SEND_MODES(ZCB_MODE_ENUM) SEND_MODES };
#undef ZCB_MODE_ENUM

struct send_mode_info {
    const char *name, *limit, *kernel, *needs, *title;
    bool zero_copy, registered_buffer, user_pages;
};
extern const struct send_mode_info send_modes[SEND_MODES];

struct zcb_config {
    const char *bind_addr;
    uint16_t port;
    int nworkers;
    bool pinned;
    int cpus[ZCB_MAX_WORKERS];
    enum send_mode send_mode;
    uint32_t zc_max_inflight; /* per worker; 0 = no cap */
    size_t response_size;
    bool drop_ipc_lock;
    bool zc_report_usage; /* SEND_ZC asks for IORING_SEND_ZC_REPORT_USAGE (probed, 6.2+) */
    const char *stats_file;
    uint32_t idle_timeout_s;
    uint32_t header_timeout_s; /* a started request head must be complete within it; 0 = never */
    uint32_t max_conns; /* per worker */
    uint32_t calibration_work; /* iterations of work.c's loop per response; 0 = none (always, outside calibration) */
    uint32_t stall_ms, stall_period_ms; /* --calibration-stall: every worker stops stall_ms every stall_period_ms; 0 = never */
    int64_t zc_page_budget; /* per worker, pages; -1 = derive from RLIMIT_MEMLOCK; 0 = none */
    uint32_t zc_min_bytes; /* adaptive: responses of at least this many bytes go zero-copy */
    int64_t zc_optmem_budget; /* msg-zerocopy, per socket, bytes; -1 = derive from optmem_max; 0 = none */
};

/* The fixed responses: all live in one page-aligned region (registered for zc-fixed). */
enum resp_kind {
    RESP_OK,            /* 200, keep-alive: exactly response_size bytes */
    RESP_OK_HEAD,       /* the head of RESP_OK only */
    RESP_OK_CLOSE,      /* 200 with Connection: close, also response_size bytes */
    RESP_OK_CLOSE_HEAD,
    RESP_OK_KEEP_ALIVE,      /* 200 for HTTP/1.0 with Connection: keep-alive, which must say so */
    RESP_OK_KEEP_ALIVE_HEAD,
    RESP_400,
    RESP_408,
    RESP_405,
    RESP_431,
    RESP_501,
    RESP_KINDS
};

struct response {
    const char *data;
    uint32_t len;
    uint32_t head_len; /* bytes of the status line and headers (== len: no body) */
    uint32_t copies; /* identical copies back to back at data (>= 1): one send answers that many */
    bool closes; /* the connection ends after this response */
    bool error;  /* counted in http_errors */
};

struct response_set {
    char *region;
    size_t region_len;
    struct response r[RESP_KINDS];
};

/* A run of `count` equal responses still to send, in request order. */
struct out_run {
    uint8_t kind;
    uint32_t count;
};

struct conn {
    int fd;            /* -1 when the slot is free */
    uint32_t gen;      /* bumped on reuse; stale completions are recognised by it */
    int next_free;
    uint32_t rlen;     /* bytes of an unfinished request kept in the receive buffer */
    uint32_t out_off;  /* bytes of the head response already sent */
    uint32_t send_len; /* bytes the send in flight was asked to send */
    uint64_t body_left; /* request body bytes still to discard */
    uint32_t last_tick;
    uint32_t head_tick; /* when the unfinished request head in rbuf began (head_pending) */
    uint8_t outq_head, outq_len;
    bool recv_armed;
    bool send_inflight;
    bool read_done;    /* no more requests are parsed (close requested, error, EOF, stop) */
    bool peer_eof;
    bool blocked;      /* parsing paused: the output queue is full */
    bool closing;      /* shutdown(2) done; the slot is freed once no operation is pending */
    bool head_pending; /* part of a request head arrived, not all of it */
    struct out_run outq[ZCB_OUTQ_SLOTS];
};

struct worker {
    int id;
    int cpu; /* -1 when not pinned */
    const struct zcb_config *cfg;
    const struct response_set *responses;
    struct zcb_counters *st;
    struct io_uring ring;
    unsigned ring_flags;
    int listen_fd;
    int wake_fd;
    uint64_t wake_value;
    struct __kernel_timespec tick_ts;
    uint32_t tick;
    struct io_uring_buf_ring *buf_ring;
    char *recv_bufs;
    struct conn *conns;
    char *rbufs; /* max_conns * ZCB_RBUF_SIZE, touched lazily */
    int free_head;
    uint32_t conns_used;
    uint32_t page_shift;      /* log2 of the page size: the kernel charges (len >> it) + 2 */
    uint64_t zc_page_budget;  /* memlock pages zero-copy sends may hold; 0 = no budget */
    uint64_t ring_pages;      /* memlock pages this worker's rings are charged (estimate) */
    unsigned cqes_handled;   /* completions handled in this loop pass, not yet released */
    bool accept_armed;
    bool accept_paused;      /* out of file descriptors: re-armed at accept_resume_tick */
    uint32_t accept_resume_tick;
    int reserve_fd;          /* held for refusing connections when descriptors run out */
    bool fd_episode;         /* an EMFILE/ENFILE episode is going on */
    int fd_episode_errno;
    uint32_t fd_episode_start;
    uint64_t fd_episode_refused;
    bool stopping;
    uint32_t stop_tick;
    uint32_t zc_leaked; /* notifications still missing at the hard stop */
    const struct send_path *path; /* send_paths[cfg->send_mode] */
    void *path_conns;             /* the send path's own per-slot state (NULL: none) */
    int path_fd;                  /* a file the send path keeps open (-1: none) */
    uint32_t path_waiting;        /* connections whose send path waits for the next tick */
    uint64_t zc_optmem_sends;     /* msg-zerocopy: notifications one socket may hold; 0 = no budget */
    uint64_t stall_period_seen; /* --calibration-stall: the last period whose stall was counted */
    pthread_t thread;
    int setup_error; /* errno-style, reported to main before the loop starts */
    char setup_msg[256];
};

/* user_data: the operation (8 bits), the connection's generation (16), the memlock pages a
 * SEND_ZC was charged (20: released at its notification, which has the same user_data) and
 * the connection's slot (20, so --max-conns is at most 1 << 20). */
enum op_type {
    OP_ACCEPT = 1, OP_RECV, OP_TICK, OP_WAKE, OP_CANCEL,
    OP_SEND,       /* a regular send (every mode's fallback) */
    OP_SEND_ZC,    /* SEND_ZC or SENDMSG_ZC: a result, then a notification with the same user_data */
    OP_MSGZC,      /* sendmsg(MSG_ZEROCOPY) */
    OP_ERRQUEUE,   /* recvmsg(MSG_ERRQUEUE): MSG_ZEROCOPY notifications */
    OP_SPLICE_HEAD, OP_SPLICE_IN, OP_SPLICE_OUT, /* one splice send: head, file -> pipe, pipe -> socket */
};

#define ZCB_UD_GEN_MASK 0xffffu
#define ZCB_UD_PAGES_MAX 0xfffffu
#define ZCB_UD_SLOT_MASK 0xfffffu

static inline uint64_t ud_make_charged(enum op_type op, uint32_t gen, uint32_t pages, uint32_t slot)
{
    return ((uint64_t)op << 56) | ((uint64_t)(gen & ZCB_UD_GEN_MASK) << 40) |
           ((uint64_t)(pages & ZCB_UD_PAGES_MAX) << 20) | (slot & ZCB_UD_SLOT_MASK);
}
static inline uint64_t ud_make(enum op_type op, uint32_t gen, uint32_t slot)
{
    return ud_make_charged(op, gen, 0, slot);
}
static inline enum op_type ud_op(uint64_t ud) { return (enum op_type)(ud >> 56); }
static inline uint32_t ud_gen(uint64_t ud) { return (uint32_t)(ud >> 40) & ZCB_UD_GEN_MASK; }
static inline uint32_t ud_pages(uint64_t ud) { return (uint32_t)(ud >> 20) & ZCB_UD_PAGES_MAX; }
static inline uint32_t ud_slot(uint64_t ud) { return (uint32_t)ud & ZCB_UD_SLOT_MASK; }

/* stats.c: what this binary is (--version, the final JSON) */
struct zcb_build_info {
    const char *commit, *compiler, *liburing, *flags;
};
extern const struct zcb_build_info zcb_build;

/* Bytes one MSG_ZEROCOPY notification holds of its socket's option memory: measured here
 * (Linux 6.18, x86_64) with `ss -tm` as 832 (the notification skb's truesize), rounded up so
 * other kernels' larger skbs still fit. */
#define ZCB_OPTMEM_PER_NOTIF 1024
#define ZCB_MSGZC_PENDING_MAX 64 /* unnotified MSG_ZEROCOPY sends one socket may have, budget or not */

/* response.c */
int responses_build(struct response_set *rs, size_t response_size, char *err, size_t errlen);
void responses_free(struct response_set *rs);
size_t response_min_size(void);

/* uring.c (cold path: ring and buffer setup) */
int uring_worker_setup(struct worker *w);
void uring_worker_teardown(struct worker *w);
struct io_uring_sqe *uring_sqe(struct worker *w);
bool uring_kernel_has_needs(const char *needs, char *why, size_t whylen);
int uring_kernel_has_zc_report_usage(void);
bool thread_has_ipc_lock(void);

/* accept.c (cold path: out of file descriptors) */
void accept_reserve_open(struct worker *w);
void accept_backoff_begin(struct worker *w, int err);
void accept_backoff_end(struct worker *w);

/* event.c (the loop) */
void *worker_main(void *arg);
void workers_wait_ready(int n);

/* conn.c (connection state and request handling) */
void conn_open(struct worker *w, int fd);
void conn_on_recv(struct worker *w, struct conn *c, const struct io_uring_cqe *cqe);
void conn_close(struct worker *w, struct conn *c, bool abort);
void conn_maybe_free(struct worker *w, struct conn *c);
void conn_after_send(struct worker *w, struct conn *c, int res);
void conns_sweep_idle(struct worker *w);
void conns_stop(struct worker *w, bool abort);

/* work.c */
void calibration_work(uint32_t iterations);
void calibration_work_responses(struct worker *w, uint32_t responses);
void calibration_stall_start(void);
void calibration_stall(struct worker *w);

/*
 * send.c and send_<mode>.c: the send paths, one per mode of zcb_modes.h, behind this table. The
 * common part (send.c) keeps the output queue, accounts sent bytes and responses, dispatches
 * completions and falls back to a regular send; a path only issues its own operations.
 */
struct send_path {
    /* cold: once per worker after its ring exists (NULL: nothing to set up) */
    int (*setup)(struct worker *w);
    void (*teardown)(struct worker *w);
    /* per connection: accepted; may its slot be freed yet; it is being freed */
    void (*conn_open)(struct worker *w, struct conn *c);
    bool (*conn_busy)(const struct worker *w, const struct conn *c);
    void (*conn_release)(struct worker *w, struct conn *c);
    /* every ZCB_TICK_MS while w->path_waiting (NULL: never needed) */
    void (*tick)(struct worker *w);
    /* hot: does this response go the path's own way (NULL: always); memlock pages the kernel
     * charges a send of len bytes (NULL: none); issue it (NULL: regular sends only) */
    bool (*chooses)(struct worker *w, const struct response *r);
    uint32_t (*pages)(const struct worker *w, uint32_t len);
    void (*submit)(struct worker *w, struct conn *c, const struct response *r, const char *p, uint32_t len,
                   uint32_t pages);
    /* hot: a completion of one of the path's own operations */
    void (*complete)(struct worker *w, const struct io_uring_cqe *cqe);
    bool capped;       /* the in-flight cap and the memlock page budget hold it back */
    bool report_usage; /* it asks IORING_SEND_ZC_REPORT_USAGE */
    bool copies_told;  /* its notifications always say whether the kernel copied (MSG_ZEROCOPY) */
};
extern const struct send_path *const send_paths[SEND_MODES];

void send_next(struct worker *w, struct conn *c);
void send_on_cqe(struct worker *w, const struct io_uring_cqe *cqe);

/* stats.c */
struct zcb_stats_header *stats_open(const char *path, int nworkers, uint32_t flags, char *err, size_t errlen);
struct zcb_counters *stats_worker(struct zcb_stats_header *h, int i);
void stats_print_modes(FILE *out);
void stats_print_json(FILE *out, struct zcb_stats_header *h, const struct zcb_config *cfg,
                      const struct worker *workers, double stop_seconds);

#endif
