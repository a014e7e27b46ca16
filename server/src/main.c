/* main.c - cold path: command line, listeners, capabilities, worker threads, orderly stop. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

#define ZCB_MAX_RESPONSE_SIZE (64u << 20)

static const char usage_text[] =
    "usage: zcb-server [options]\n"
    "\n"
    "An io_uring HTTP/1.1 server answering every GET with the same fixed response, to compare\n"
    "regular send against the ways of sending without a copy.\n"
    "\n"
    "  --port N               TCP port to listen on (0 = any free port; printed at start) [8080]\n"
    "  --bind ADDR            IPv4 or IPv6 address to listen on [127.0.0.1]\n"
    "  --cpus LIST            one worker per CPU in LIST (e.g. 0,2-3), each pinned to its CPU\n"
    "  --workers N            N unpinned workers (ignored with --cpus) [1]\n"
    "  --send MODE            regular: IORING_OP_SEND; zc: IORING_OP_SEND_ZC from a plain buffer;\n"
    "                         zc-fixed: SEND_ZC from a registered buffer; sendmsg-zc:\n"
    "                         IORING_OP_SENDMSG_ZC, head and body in iovecs of their own;\n"
    "                         msg-zerocopy: sendmsg(MSG_ZEROCOPY), notifications from the error\n"
    "                         queue; splice: bodies spliced from a page-cache file through a pipe;\n"
    "                         adaptive: SEND_ZC from --zc-min-bytes up, regular below [regular]\n"
    "  --list-modes           the send modes (include/zcb_modes.h) as one JSON object, each with\n"
    "                         whether this kernel supports it and why not, and exit\n"
    "  --zc-min-bytes BYTES   adaptive only: responses of at least BYTES go zero-copy; k/m\n"
    "                         suffixes allowed [10k: MSG_ZEROCOPY's documented rule of thumb]\n"
    "  --zc-optmem-budget N   msg-zerocopy only, per socket: unnotified sends may hold at most N\n"
    "                         bytes of option memory (1 KiB each); beyond it a regular send is\n"
    "                         used. auto = net.core.optmem_max of the server's network namespace;\n"
    "                         0 = no budget [auto]\n"
    "  --zc-max-inflight N    per worker: at most N zero-copy sends whose buffer the kernel still\n"
    "                         holds; beyond it a regular send is used; 0 = no cap [256]\n"
    "  --zc-page-budget N     per worker: at most N memlock pages held by zero-copy sends in flight\n"
    "                         (each is charged (len >> PAGE_SHIFT) + 2 until its notification);\n"
    "                         beyond it a regular send is used. auto = (RLIMIT_MEMLOCK - rings -\n"
    "                         margin) / workers when the kernel charges (no CAP_IPC_LOCK), else\n"
    "                         none; 0 = no budget [auto]\n"
    "  --response-size BYTES  total bytes of every 200 response, headers included; k/m suffixes\n"
    "                         allowed (1k = 1024) [88]\n"
    "  --drop-ipc-lock        drop CAP_IPC_LOCK before creating any ring, so the kernel charges\n"
    "                         zero-copy sends to RLIMIT_MEMLOCK even as root or privileged\n"
    "  --no-zc-report-usage   do not ask the kernel whether it copied a zero-copy send (as on\n"
    "                         kernels before 6.2, which lack IORING_SEND_ZC_REPORT_USAGE): the\n"
    "                         copied share is then unknown [asked when the kernel has it]\n"
    "  --stats-file PATH      keep the live counters in this shared-memory file (zcb_stats.h)\n"
    "  --idle-timeout SECS    close a connection idle this long; 0 = never [60]\n"
    "  --header-timeout SECS  a request head must be complete this long after its first byte,\n"
    "                         else 408 and close; 0 = never [5]\n"
    "  --max-conns N          connection slots per worker [16384]\n"
    "  --calibration-work N   spend N iterations of a fixed CPU loop per response: a known cost\n"
    "                         for `invoke calibrate`; never in a real comparison [0]\n"
    "  --calibration-stall S/P  every worker stops answering for S ms every P ms, on one schedule\n"
    "                         from the start: a known latency tail for `invoke calibrate` [off]\n"
    "  --version              commit, compiler, liburing version and build flags\n"
    "  --help                 this text\n"
    "\n"
    "Each worker has its own ring and SO_REUSEPORT listener. On SIGTERM or SIGINT the server\n"
    "stops accepting, finishes the sends in progress, waits for every zero-copy notification,\n"
    "prints its counters as one JSON object on stdout and exits 0.\n";

/* Bad input: one line on stderr, exit status 2. */
__attribute__((format(printf, 1, 2), noreturn)) static void die_usage(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "zcb-server: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see --help)\n");
    exit(2);
}

/* A whole number in [min, max]; `suffixes` allows k/m multipliers. */
static unsigned long long parse_number(const char *opt, const char *s, unsigned long long min,
                                       unsigned long long max, bool suffixes)
{
    char *end;
    unsigned long long v, unit = 1;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (suffixes && end != s && (*end == 'k' || *end == 'K') && end[1] == '\0') {
        unit = 1024;
        end++;
    } else if (suffixes && end != s && (*end == 'm' || *end == 'M') && end[1] == '\0') {
        unit = 1024 * 1024;
        end++;
    }
    /* v > max / unit: the product would exceed max, and might wrap round to a small number */
    if (errno || end == s || *end != '\0' || *s == '-' || v > max / unit || v * unit < min)
        die_usage("%s: '%s' is not a whole number in %llu..%llu", opt, s, min, max);
    return v * unit;
}

static void parse_cpus(struct zcb_config *cfg, const char *list)
{
    cpu_set_t allowed;
    char *copy = strdup(list), *tok, *save = NULL;

    sched_getaffinity(0, sizeof(allowed), &allowed);
    cfg->nworkers = 0;
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *dash = strchr(tok, '-');
        unsigned long long lo, hi, cpu;
        if (dash)
            *dash = '\0';
        lo = parse_number("--cpus", tok, 0, CPU_SETSIZE - 1, false);
        hi = dash ? parse_number("--cpus", dash + 1, lo, CPU_SETSIZE - 1, false) : lo;
        for (cpu = lo; cpu <= hi; cpu++) {
            int i;
            if (!CPU_ISSET(cpu, &allowed))
                die_usage("--cpus: CPU %llu does not exist or is not available to this process", cpu);
            for (i = 0; i < cfg->nworkers; i++)
                if (cfg->cpus[i] == (int)cpu)
                    die_usage("--cpus: CPU %llu is listed twice", cpu);
            if (cfg->nworkers == ZCB_MAX_WORKERS)
                die_usage("--cpus: more than %d CPUs", ZCB_MAX_WORKERS);
            cfg->cpus[cfg->nworkers++] = (int)cpu;
        }
    }
    if (cfg->nworkers == 0)
        die_usage("--cpus: '%s' names no CPU", list);
    cfg->pinned = true;
    free(copy);
}

static enum send_mode parse_send_mode(const char *s)
{
    char known[256] = "";
    int m;

    for (m = 0; m < SEND_MODES; m++) {
        if (strcmp(s, send_modes[m].name) == 0)
            return (enum send_mode)m;
        snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s", m ? ", " : "", send_modes[m].name);
    }
    die_usage("--send: '%s' is not one of %s", s, known);
}

/* "S/P": stall S ms every P ms, 0 < S < P <= 60 s. */
static void parse_stall(const char *text, struct zcb_config *cfg)
{
    const char *slash = strchr(text, '/');
    char stall[32];

    if (!slash || (size_t)(slash - text) >= sizeof(stall))
        die_usage("--calibration-stall: '%s' is not STALL_MS/PERIOD_MS (e.g. 50/500)", text);
    memcpy(stall, text, (size_t)(slash - text));
    stall[slash - text] = '\0';
    cfg->stall_ms = (uint32_t)parse_number("--calibration-stall", stall, 1, 60000, false);
    cfg->stall_period_ms = (uint32_t)parse_number("--calibration-stall", slash + 1, 2, 60000, false);
    if (cfg->stall_ms >= cfg->stall_period_ms)
        die_usage("--calibration-stall: the stall (%u ms) must be shorter than its period (%u ms)",
                  cfg->stall_ms, cfg->stall_period_ms);
}

static void parse_args(int argc, char **argv, struct zcb_config *cfg)
{
    enum { O_PORT = 256, O_BIND, O_CPUS, O_WORKERS, O_SEND, O_CAP, O_BUDGET, O_SIZE, O_DROP, O_NO_USAGE, O_STATS, O_IDLE, O_HEADER, O_MAXC, O_WORK, O_STALL, O_LIST_MODES, O_VERSION, O_HELP, O_MIN_BYTES, O_OPTMEM };
    static const struct option opts[] = {
        { "port", required_argument, NULL, O_PORT },
        { "bind", required_argument, NULL, O_BIND },
        { "cpus", required_argument, NULL, O_CPUS },
        { "workers", required_argument, NULL, O_WORKERS },
        { "send", required_argument, NULL, O_SEND },
        { "zc-max-inflight", required_argument, NULL, O_CAP },
        { "zc-page-budget", required_argument, NULL, O_BUDGET },
        { "response-size", required_argument, NULL, O_SIZE },
        { "drop-ipc-lock", no_argument, NULL, O_DROP },
        { "no-zc-report-usage", no_argument, NULL, O_NO_USAGE },
        { "stats-file", required_argument, NULL, O_STATS },
        { "idle-timeout", required_argument, NULL, O_IDLE },
        { "header-timeout", required_argument, NULL, O_HEADER },
        { "max-conns", required_argument, NULL, O_MAXC },
        { "calibration-work", required_argument, NULL, O_WORK },
        { "calibration-stall", required_argument, NULL, O_STALL },
        { "list-modes", no_argument, NULL, O_LIST_MODES },
        { "zc-min-bytes", required_argument, NULL, O_MIN_BYTES },
        { "zc-optmem-budget", required_argument, NULL, O_OPTMEM },
        { "version", no_argument, NULL, O_VERSION },
        { "help", no_argument, NULL, O_HELP },
        { NULL, 0, NULL, 0 },
    };
    const char *cpus = NULL, *min_bytes = NULL, *optmem = NULL;
    int opt;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case O_PORT: cfg->port = (uint16_t)parse_number("--port", optarg, 0, 65535, false); break;
        case O_BIND: cfg->bind_addr = optarg; break;
        case O_CPUS: cpus = optarg; break;
        case O_WORKERS: cfg->nworkers = (int)parse_number("--workers", optarg, 1, ZCB_MAX_WORKERS, false); break;
        case O_SEND: cfg->send_mode = parse_send_mode(optarg); break;
        case O_CAP: cfg->zc_max_inflight = (uint32_t)parse_number("--zc-max-inflight", optarg, 0, 1u << 20, false); break;
        case O_BUDGET:
            cfg->zc_page_budget = strcmp(optarg, "auto") == 0
                                      ? -1 : (int64_t)parse_number("--zc-page-budget", optarg, 0, ZCB_UD_PAGES_MAX, false);
            break;
        case O_SIZE: cfg->response_size = parse_number("--response-size", optarg, 1, ZCB_MAX_RESPONSE_SIZE, true); break;
        case O_DROP: cfg->drop_ipc_lock = true; break;
        case O_NO_USAGE: cfg->zc_report_usage = false; break;
        case O_STATS: cfg->stats_file = optarg; break;
        case O_IDLE: cfg->idle_timeout_s = (uint32_t)parse_number("--idle-timeout", optarg, 0, 86400, false); break;
        case O_HEADER: cfg->header_timeout_s = (uint32_t)parse_number("--header-timeout", optarg, 0, 86400, false); break;
        case O_MAXC: cfg->max_conns = (uint32_t)parse_number("--max-conns", optarg, 1, 1u << 20, false); break;
        case O_MIN_BYTES:
            min_bytes = optarg;
            cfg->zc_min_bytes = (uint32_t)parse_number("--zc-min-bytes", optarg, 0, ZCB_MAX_RESPONSE_SIZE, true);
            break;
        case O_OPTMEM:
            optmem = optarg;
            cfg->zc_optmem_budget = strcmp(optarg, "auto") == 0
                                        ? -1 : (int64_t)parse_number("--zc-optmem-budget", optarg, 0, 1ull << 40, true);
            break;
        case O_WORK: cfg->calibration_work = (uint32_t)parse_number("--calibration-work", optarg, 0, 1u << 24, false); break;
        case O_STALL: parse_stall(optarg, cfg); break;
        case O_HELP: fputs(usage_text, stdout); exit(0);
        case O_LIST_MODES: stats_print_modes(stdout); exit(0);
        case O_VERSION:
            printf("zcb-server\ncommit: %s\ncompiler: %s\nliburing: %s\nflags: %s\n", zcb_build.commit,
                   zcb_build.compiler, zcb_build.liburing, zcb_build.flags);
            exit(0);
        default:
            die_usage("unknown option or missing value: '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);
    if (min_bytes && cfg->send_mode != SEND_ADAPTIVE)
        die_usage("--zc-min-bytes applies to --send adaptive only");
    if (optmem && cfg->send_mode != SEND_MSG_ZEROCOPY)
        die_usage("--zc-optmem-budget applies to --send msg-zerocopy only");
    if (cpus)
        parse_cpus(cfg, cpus);
}

/* Drop CAP_IPC_LOCK from this thread's sets (threads created later inherit them): io_uring
 * charges memlock for zero-copy sends only when the ring's creator lacks it. */
static int drop_ipc_lock(void)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    unsigned idx = CAP_TO_INDEX(CAP_IPC_LOCK), mask = CAP_TO_MASK(CAP_IPC_LOCK);

    if (syscall(SYS_capget, &hdr, data))
        return -errno;
    data[idx].effective &= ~mask;
    data[idx].permitted &= ~mask;
    data[idx].inheritable &= ~mask;
    if (syscall(SYS_capset, &hdr, data))
        return -errno;
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAP_IPC_LOCK, 0, 0);
    prctl(PR_CAPBSET_DROP, CAP_IPC_LOCK, 0, 0, 0); /* needs CAP_SETPCAP; best effort */
    return 0;
}

static void raise_nofile_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* One SO_REUSEPORT listener per worker; with --port 0 the first one picks the port. */
static int listener_open(struct zcb_config *cfg, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, one = 1, family;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, cfg->bind_addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons(cfg->port);
        len = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, cfg->bind_addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(cfg->port);
        len = sizeof(struct sockaddr_in6);
    } else {
        snprintf(err, errlen, "--bind: '%s' is not an IPv4 or IPv6 address", cfg->bind_addr);
        return -2;
    }
    fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    /* Accepted sockets inherit it: a response leaves at once, never waits on Nagle. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 65535) < 0) {
        snprintf(err, errlen, "cannot listen on %s:%u: %s", cfg->bind_addr, cfg->port, strerror(errno));
        close(fd);
        return -1;
    }
    if (cfg->port == 0 && getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        cfg->port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                            : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *ring_flags_text(unsigned flags)
{
    if (flags & IORING_SETUP_DEFER_TASKRUN)
        return "SINGLE_ISSUER|DEFER_TASKRUN";
    if (flags & IORING_SETUP_COOP_TASKRUN)
        return "COOP_TASKRUN";
    return "default";
}

int main(int argc, char **argv)
{
    static struct worker workers[ZCB_MAX_WORKERS];
    struct zcb_config cfg = {
        .bind_addr = "127.0.0.1", .port = 8080, .nworkers = 1, .send_mode = SEND_REGULAR, .zc_report_usage = true,
        .zc_max_inflight = 256, .response_size = 88, .idle_timeout_s = 60, .header_timeout_s = 5, .max_conns = 16384,
        .zc_page_budget = -1, .zc_min_bytes = 10240, .zc_optmem_budget = -1,
    };
    const struct send_mode_info *mode;
    const struct send_path *path;
    struct response_set responses;
    struct zcb_stats_header *stats;
    struct rlimit memlock;
    sigset_t stop_signals;
    char err[256];
    double stop_start;
    int i, sig;

    parse_args(argc, argv, &cfg);
    if (responses_build(&responses, cfg.response_size, err, sizeof(err))) {
        fprintf(stderr, "zcb-server: %s\n", err);
        return 2;
    }
    mode = &send_modes[cfg.send_mode];
    path = send_paths[cfg.send_mode];
    /* A mode this kernel lacks would measure something else (or fail on every send): refuse. */
    if (!uring_kernel_has_needs(mode->needs, err, sizeof(err))) {
        fprintf(stderr, "zcb-server: --send %s: %s (needs Linux %s+): refusing to run it\n", mode->name, err,
                mode->kernel);
        return 1;
    }
    /* Kernels 6.0/6.1 have SEND_ZC but refuse REPORT_USAGE: run without it, copied share unknown. */
    if (!path->report_usage || (cfg.zc_report_usage && uring_kernel_has_zc_report_usage() != 1))
        cfg.zc_report_usage = false;
    if (cfg.drop_ipc_lock && drop_ipc_lock()) {
        fprintf(stderr, "zcb-server: --drop-ipc-lock: cannot drop CAP_IPC_LOCK: %s\n", strerror(errno));
        return 1;
    }
    raise_nofile_limit();
    stats = stats_open(cfg.stats_file, cfg.nworkers,
                       cfg.zc_report_usage || path->copies_told ? ZCB_STATS_FLAG_ZC_USAGE_REPORTED : 0, err, sizeof(err));
    if (!stats) {
        fprintf(stderr, "zcb-server: %s\n", err);
        return 1;
    }

    /* Signals are taken by sigwait() in this thread only; workers never see them. */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    calibration_stall_start(); /* the stalls' schedule runs from here, alike for every worker */

    for (i = 0; i < cfg.nworkers; i++) {
        struct worker *w = &workers[i];
        w->id = i;
        w->cpu = cfg.pinned ? cfg.cpus[i] : -1;
        w->cfg = &cfg;
        w->responses = &responses;
        w->st = stats_worker(stats, i);
        w->wake_fd = -1;
        w->path = path;
        w->path_fd = -1;
        w->reserve_fd = -1;
        w->tick_ts.tv_nsec = ZCB_TICK_MS * 1000000L;
        w->listen_fd = listener_open(&cfg, err, sizeof(err));
        if (w->listen_fd < 0) {
            fprintf(stderr, "zcb-server: %s\n", err);
            return w->listen_fd == -2 ? 2 : 1;
        }
    }
    for (i = 0; i < cfg.nworkers; i++)
        pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
    workers_wait_ready(cfg.nworkers);
    for (i = 0; i < cfg.nworkers; i++) {
        if (workers[i].setup_error) {
            fprintf(stderr, "zcb-server: worker %d: %s\n", i, workers[i].setup_msg);
            return 1;
        }
    }
    getrlimit(RLIMIT_MEMLOCK, &memlock);
    fprintf(stderr,
            "zcb-server: listening on %s:%u (%d worker%s%s, send=%s, zc-max-inflight=%u, response=%zu B, "
            "ring=%s, memlock accounting %s, RLIMIT_MEMLOCK=%lld KiB, zc page budget %llu/worker, "
            "zero-copy copies %s)\n",
            cfg.bind_addr, cfg.port, cfg.nworkers, cfg.nworkers > 1 ? "s" : "", cfg.pinned ? " pinned" : "",
            send_modes[cfg.send_mode].name,
            cfg.zc_max_inflight, cfg.response_size, ring_flags_text(workers[0].ring_flags),
            thread_has_ipc_lock() ? "off (CAP_IPC_LOCK held)" : "on",
            memlock.rlim_cur == RLIM_INFINITY ? -1LL : (long long)(memlock.rlim_cur / 1024),
            (unsigned long long)workers[0].zc_page_budget,
            !mode->zero_copy || !mode->user_pages ? "n/a"
            : cfg.zc_report_usage || path->copies_told ? "reported" : "unknown (no REPORT_USAGE)");

    while (sigwait(&stop_signals, &sig) != 0)
        ;
    stop_start = now_seconds();
    for (i = 0; i < cfg.nworkers; i++) {
        uint64_t one = 1;
        if (write(workers[i].wake_fd, &one, sizeof(one)) < 0)
            fprintf(stderr, "zcb-server: cannot wake worker %d: %s\n", i, strerror(errno));
    }
    for (i = 0; i < cfg.nworkers; i++)
        pthread_join(workers[i].thread, NULL);
    stats_print_json(stdout, stats, &cfg, workers, now_seconds() - stop_start);
    for (i = 0; i < cfg.nworkers; i++) {
        uring_worker_teardown(&workers[i]);
        close(workers[i].listen_fd);
        if (workers[i].zc_leaked)
            fprintf(stderr, "zcb-server: worker %d: %u zero-copy notifications never arrived; "
                            "buffers kept mapped\n", i, workers[i].zc_leaked);
    }
    for (i = 0; i < cfg.nworkers; i++)
        if (workers[i].zc_leaked)
            return 0; /* the kernel may still read them: never unmap */
    responses_free(&responses);
    return 0;
}
