/*
 * zcb_stats.h - the server's live counters: the one definition of their layout.
 *
 * Read by the C server (which defines the struct from ZCB_COUNTERS below) and by
 * zcbench/measure/counters.py, which extracts the same X-macro list from this file and hands the
 * resulting struct to cffi. Add a counter here and both sides see it; nothing else
 * lists them.
 *
 * The stats file (--stats-file) is: one struct zcb_stats_header, then `nworkers` blocks of
 * `worker_stride` bytes, each starting with a struct zcb_counters written by one worker
 * thread only (single writer, 8-byte aligned stores: a reader never sees a torn value).
 * Totals are the sum over workers, computed by the reader.
 *
 * Keep every X(...) entry on one line: counters.py reads them line by line.
 * Kinds: "count" only grows; "gauge" is a level now; "peak" is the highest level seen.
 */
#ifndef ZCB_STATS_H
#define ZCB_STATS_H

#include <stdint.h>

#define ZCB_STATS_MAGIC 0x5a434253u /* "ZCBS" */
#define ZCB_STATS_VERSION 7
/* zc_copied is meaningful: SEND_ZC/SENDMSG_ZC asked IORING_SEND_ZC_REPORT_USAGE (kernel 6.2+), or the
 * mode is msg-zerocopy (its notifications always say SO_EE_CODE_ZEROCOPY_COPIED). Without it
 * (regular, splice, kernels 6.0/6.1, --no-zc-report-usage) the copied share is unknown. */
#define ZCB_STATS_FLAG_ZC_USAGE_REPORTED 0x1u
#define ZCB_WORKER_STRIDE 512 /* bytes per worker block: a multiple of the cache line */

#define ZCB_COUNTERS(X) \
    X(conns_accepted, count, "connections accepted") \
    X(conns_closed, count, "connections closed") \
    X(conns_open, gauge, "connections open now") \
    X(conns_rejected, count, "connections refused (closed unanswered): the worker's table was full or file descriptors ran out") \
    X(accept_backoffs, count, "200 ms pauses of accepting because file descriptors ran out (EMFILE/ENFILE)") \
    X(requests, count, "HTTP requests parsed (every one gets a response)") \
    X(responses, count, "HTTP responses sent completely") \
    X(responses_dropped, count, "responses still queued when their connection ended (the client left first)") \
    X(bytes_sent, count, "response bytes acknowledged by send completions") \
    X(sends_regular, count, "IORING_OP_SEND operations completed") \
    X(sends_zc, count, "zero-copy send operations completed: SEND_ZC, SENDMSG_ZC, or sendmsg(MSG_ZEROCOPY) (msg-zerocopy)") \
    X(zc_notifs, count, "zero-copy sends whose buffer the kernel released: IORING_CQE_F_NOTIF, or an id in a MSG_ZEROCOPY error-queue range") \
    X(zc_copied, count, "of zc_notifs, those the kernel copied anyway (IORING_NOTIF_USAGE_ZC_COPIED, SO_EE_CODE_ZEROCOPY_COPIED)") \
    X(zc_enomem, count, "SEND_ZC/SENDMSG_ZC completions with -ENOMEM (memlock)") \
    X(zc_enobufs, count, "sendmsg(MSG_ZEROCOPY) completions with -ENOBUFS (optmem_max, or memlock)") \
    X(fallback_cap, count, "regular sends issued because the worker was at its in-flight cap") \
    X(fallback_budget, count, "regular sends issued because the worker's zero-copy sends held its memlock page budget") \
    X(fallback_optmem, count, "regular sends issued because the socket's unnotified MSG_ZEROCOPY sends held its optmem budget (at most 64 either way)") \
    X(fallback_enomem, count, "regular sends issued to resend the bytes of a zero-copy send that failed with -ENOMEM") \
    X(fallback_enobufs, count, "regular sends issued to resend the bytes of a sendmsg(MSG_ZEROCOPY) that failed with -ENOBUFS") \
    X(adaptive_small, count, "regular sends issued because their response is smaller than --zc-min-bytes (adaptive)") \
    X(errqueue_reads, count, "MSG_ZEROCOPY error-queue reads that returned a notification (each covers a range of sends)") \
    X(splices, count, "splice sends completed: a head SEND and file -> pipe -> socket IORING_OP_SPLICEs, one chain per send") \
    X(splice_bytes, count, "response bytes moved pipe -> socket by IORING_OP_SPLICE from the page cache (no user pages)") \
    X(zc_inflight, gauge, "zero-copy sends whose buffer the kernel still holds") \
    X(zc_inflight_peak, peak, "highest zc_inflight seen") \
    X(zc_pages, gauge, "memlock pages the kernel charges the zero-copy sends in flight ((len >> PAGE_SHIFT) + 2 each; 0 for zc-fixed)") \
    X(zc_pages_peak, peak, "highest zc_pages seen") \
    X(zc_optmem_budget, gauge, "msg-zerocopy: unnotified sends one socket may hold, below net.core.optmem_max (0 = none)") \
    X(zc_page_budget, gauge, "the worker's memlock page budget for zero-copy sends (0 = none: not charged, or --zc-page-budget 0)") \
    X(partial_sends, count, "sends that completed short and were continued from where they stopped") \
    X(responses_coalesced, count, "responses that needed no send of their own: pipelined, they went out in one send with others (sends = responses + partial_sends - responses_coalesced)") \
    X(recv_enobufs, count, "multishot receives ended by an empty provided-buffer ring (-ENOBUFS) and re-armed") \
    X(http_errors, count, "requests answered with an error status (400, 405, 408, 431, 501)") \
    X(idle_closed, count, "connections closed by the idle timeout") \
    X(header_timeouts, count, "request heads not complete within --header-timeout: answered 408 and closed") \
    X(send_errors, count, "sends that failed with an error other than -ENOMEM/-ENOBUFS (peer reset...)") \
    X(cq_overflows, gauge, "completion-queue overflows reported by the kernel") \
    X(calibration_work_ns, count, "nanoseconds the calibration's injected loop ran in the responses it timed, preempted calls left out (--calibration-work; 0 otherwise)") \
    X(calibration_work_timed, count, "responses whose injected loop was timed: one send in 16 (calibration_work_ns / this = the loop's time per response)") \
    X(calibration_stalls, count, "stalls the worker sat out (--calibration-stall; 0 otherwise)") \
    X(calibration_stall_ns, count, "nanoseconds the worker sat out in stalls (--calibration-stall; 0 otherwise)")

#define ZCB_DECLARE_COUNTER(name, kind, doc) uint64_t name;

struct zcb_counters {
    ZCB_COUNTERS(ZCB_DECLARE_COUNTER)
};

struct zcb_stats_header {
    uint32_t magic;         /* ZCB_STATS_MAGIC */
    uint32_t version;       /* ZCB_STATS_VERSION */
    uint32_t nworkers;      /* worker blocks that follow */
    uint32_t worker_stride; /* ZCB_WORKER_STRIDE */
    uint32_t ncounters;     /* fields in struct zcb_counters, to catch a stale reader */
    int32_t pid;            /* the server's pid */
    uint64_t started_ns;    /* CLOCK_REALTIME at start */
    uint32_t flags;         /* ZCB_STATS_FLAG_* */
    uint32_t flags_pad;
    uint64_t header_pad[3]; /* header is 64 bytes */
};

#endif
