/* stats.c - the live counters file (layout in zcb_stats.h) and the final JSON report. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

_Static_assert(sizeof(struct zcb_stats_header) == 64, "stats header must stay 64 bytes");
_Static_assert(sizeof(struct zcb_counters) <= ZCB_WORKER_STRIDE, "counters outgrew ZCB_WORKER_STRIDE");

#ifndef ZCB_GIT_COMMIT
#define ZCB_GIT_COMMIT "unknown"
#endif
#ifndef ZCB_LIBURING_VERSION
#define ZCB_LIBURING_VERSION "unknown"
#endif
#ifndef ZCB_BUILD_FLAGS
#define ZCB_BUILD_FLAGS "unknown"
#endif
#if defined(__clang__)
#define ZCB_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define ZCB_COMPILER "gcc " __VERSION__
#else
#define ZCB_COMPILER "unknown"
#endif

const struct zcb_build_info zcb_build = { ZCB_GIT_COMMIT, ZCB_COMPILER, ZCB_LIBURING_VERSION, ZCB_BUILD_FLAGS };

#define ZCB_COUNT_ONE(name, kind, doc) +1
static const uint32_t zcb_ncounters = 0 ZCB_COUNTERS(ZCB_COUNT_ONE);

struct zcb_stats_header *stats_open(const char *path, int nworkers, uint32_t flags, char *err, size_t errlen)
{
    size_t size = sizeof(struct zcb_stats_header) + (size_t)nworkers * ZCB_WORKER_STRIDE;
    struct zcb_stats_header *h;
    struct timespec now;
    void *mem;

    if (path) {
        /* O_NOFOLLOW: a planted symlink must not make the server truncate another file. */
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
            snprintf(err, errlen, "--stats-file %s: %s", path, strerror(errno));
            if (fd >= 0)
                close(fd);
            return NULL;
        }
        mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
    } else {
        mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    }
    if (mem == MAP_FAILED) {
        snprintf(err, errlen, "cannot map the counters: %s", strerror(errno));
        return NULL;
    }
    h = mem;
    clock_gettime(CLOCK_REALTIME, &now);
    h->version = ZCB_STATS_VERSION;
    h->nworkers = (uint32_t)nworkers;
    h->worker_stride = ZCB_WORKER_STRIDE;
    h->ncounters = zcb_ncounters;
    h->pid = getpid();
    h->flags = flags;
    h->started_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    /* The magic goes last: a reader that sees it sees a complete header. */
    __atomic_store_n(&h->magic, ZCB_STATS_MAGIC, __ATOMIC_RELEASE);
    return h;
}

struct zcb_counters *stats_worker(struct zcb_stats_header *h, int i)
{
    return (struct zcb_counters *)((char *)h + sizeof(*h) + (size_t)i * ZCB_WORKER_STRIDE);
}

static void print_counters(FILE *out, const struct zcb_counters *c)
{
    const char *sep = "";
#define ZCB_PRINT_ONE(name, kind, doc)                                                    \
    fprintf(out, "%s\"" #name "\":%llu", sep, (unsigned long long)c->name);          \
    sep = ",";
    ZCB_COUNTERS(ZCB_PRINT_ONE)
#undef ZCB_PRINT_ONE
}

#define ZCB_MODE_INFO(id, name, zero_copy, registered, user_pages, limit, kernel, needs, title) \
    [SEND_##id] = { name, limit, kernel, needs, title, zero_copy, registered, user_pages },
const struct send_mode_info send_modes[SEND_MODES] = { ZCB_SEND_MODES(ZCB_MODE_INFO) };
#undef ZCB_MODE_INFO

static const char *send_mode_name(enum send_mode m)
{
    return send_modes[m].name;
}

static const char *json_bool(bool b)
{
    return b ? "true" : "false";
}

/* Every mode with what it is and whether this kernel offers what it needs (and why not). */
void stats_print_modes(FILE *out)
{
    int m;

    fputs("{\"send_modes\":[", out);
    for (m = 0; m < SEND_MODES; m++) {
        const struct send_mode_info *i = &send_modes[m];
        char why[192] = "";
        bool supported = uring_kernel_has_needs(i->needs, why, sizeof(why));
        fprintf(out, "%s{\"name\":\"%s\",\"zero_copy\":%s,\"registered_buffer\":%s,\"user_pages\":%s,"
                     "\"limit\":\"%s\",\"kernel\":\"%s\",\"needs\":\"%s\",\"title\":\"%s\",\"supported\":%s,"
                     "\"unsupported\":",
                m ? "," : "", i->name, json_bool(i->zero_copy), json_bool(i->registered_buffer),
                json_bool(i->user_pages), i->limit, i->kernel, i->needs, i->title, json_bool(supported));
        if (supported)
            fputs("null}", out);
        else
            fprintf(out, "\"%s\"}", why);
    }
    fputs("]}\n", out);
}

void stats_print_json(FILE *out, struct zcb_stats_header *h, const struct zcb_config *cfg,
                      const struct worker *workers, double stop_seconds)
{
    struct zcb_counters total;
    uint64_t leaked = 0;
    int i;

    memset(&total, 0, sizeof(total));
    for (i = 0; i < cfg->nworkers; i++) {
        const struct zcb_counters *c = stats_worker(h, i);
/* Counts and gauges add up over workers; a peak of the whole is the highest worker's peak
 * (workers peak at different moments, so their sum was never reached). */
#define ZCB_TOTAL_count(t, v) (t) += (v)
#define ZCB_TOTAL_gauge(t, v) (t) += (v)
#define ZCB_TOTAL_peak(t, v) (t) = (v) > (t) ? (v) : (t)
#define ZCB_ADD_ONE(name, kind, doc) ZCB_TOTAL_##kind(total.name, c->name);
        ZCB_COUNTERS(ZCB_ADD_ONE)
#undef ZCB_ADD_ONE
        leaked += workers[i].zc_leaked;
    }
    fprintf(out, "{\"config\":{\"bind\":\"%s\",\"port\":%u,\"workers\":%d,\"send\":\"%s\","
                 "\"zc_max_inflight\":%u,\"response_size\":%zu,\"drop_ipc_lock\":%s,"
                 "\"idle_timeout\":%u,\"header_timeout\":%u,\"zc_report_usage\":%s,"
                 "\"calibration_work\":%u,\"calibration_stall_ms\":%u,\"calibration_stall_period_ms\":%u,"
                 "\"zc_min_bytes\":%u,\"zc_optmem_budget\":%lld},",
            cfg->bind_addr, cfg->port, cfg->nworkers, send_mode_name(cfg->send_mode), cfg->zc_max_inflight,
            cfg->response_size, cfg->drop_ipc_lock ? "true" : "false", cfg->idle_timeout_s, cfg->header_timeout_s,
            cfg->zc_report_usage ? "true" : "false", cfg->calibration_work, cfg->stall_ms, cfg->stall_period_ms,
            cfg->zc_min_bytes, (long long)cfg->zc_optmem_budget);
    {
        /* What explains an ENOMEM of SEND_ZC: the kernel charges memlock only without
         * CAP_IPC_LOCK, against this limit; the budget keeps zero-copy sends under it. */
        struct rlimit rl;
        bool limited = getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
        fprintf(out, "\"memlock\":{\"charged\":%s,\"limit_bytes\":", thread_has_ipc_lock() ? "false" : "true");
        if (limited)
            fprintf(out, "%llu", (unsigned long long)rl.rlim_cur);
        else
            fprintf(out, "null");
        fprintf(out, ",\"page_size\":%lu,\"ring_pages_per_worker\":%llu,\"zc_page_budget_per_worker\":%llu},",
                1UL << workers[0].page_shift, (unsigned long long)workers[0].ring_pages,
                (unsigned long long)workers[0].zc_page_budget);
    }
    fprintf(out, "\"optmem\":{\"bytes_per_notification\":%d,\"sends_per_socket\":%llu},",
            ZCB_OPTMEM_PER_NOTIF, (unsigned long long)workers[0].zc_optmem_sends);
    fprintf(out, "\"build\":{\"commit\":\"%s\",\"compiler\":\"%s\",\"liburing\":\"%s\",\"flags\":\"%s\"},",
            zcb_build.commit, zcb_build.compiler, zcb_build.liburing, zcb_build.flags);
    fprintf(out, "\"shutdown\":{\"seconds\":%.3f,\"zc_notifications_missing\":%llu},", stop_seconds,
            (unsigned long long)leaked);
    fprintf(out, "\"totals\":{");
    print_counters(out, &total);
    fprintf(out, "},\"workers\":[");
    for (i = 0; i < cfg->nworkers; i++) {
        fprintf(out, "%s{\"cpu\":%d,\"ring_flags\":%u,", i ? "," : "", workers[i].cpu, workers[i].ring_flags);
        print_counters(out, stats_worker(h, i));
        fprintf(out, "}");
    }
    fprintf(out, "]}\n");
    fflush(out);
}
