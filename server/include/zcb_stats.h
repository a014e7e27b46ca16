/*
 * zcb_stats.h - the server's live counters: the one definition of their layout.
 *
 * Read by the C server (which defines the struct from ZCB_COUNTERS below) and by
 * zcbench/counters.py, which extracts the same X-macro list from this file and hands the
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
#define ZCB_STATS_VERSION 5
/* zc_copied is meaningful: SEND_ZC asked IORING_SEND_ZC_REPORT_USAGE (kernel 6.2+). Without it
 * (regular arm, kernels 6.0/6.1, --no-zc-report-usage) the copied share is unknown. */
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
    X(sends_zc, count, "IORING_OP_SEND_ZC operations completed") \
    X(zc_notifs, count, "zero-copy notifications (IORING_CQE_F_NOTIF) received") \
    X(zc_copied, count, "notifications flagged IORING_NOTIF_USAGE_ZC_COPIED: the kernel copied anyway") \
    X(zc_enomem, count, "SEND_ZC completions with -ENOMEM") \
    X(fallback_cap, count, "regular sends issued because the worker was at its in-flight cap") \
    X(fallback_budget, count, "regular sends issued because the worker's zero-copy sends held its memlock page budget") \
    X(fallback_enomem, count, "regular sends issued to resend the bytes of a SEND_ZC that failed with -ENOMEM") \
    X(zc_inflight, gauge, "SEND_ZC operations whose buffer is still held by the kernel") \
    X(zc_inflight_peak, peak, "highest zc_inflight seen") \
    X(zc_pages, gauge, "memlock pages the kernel charges the SEND_ZC operations in flight ((len >> PAGE_SHIFT) + 2 each; 0 for zc-fixed)") \
    X(zc_pages_peak, peak, "highest zc_pages seen") \
    X(zc_page_budget, gauge, "the worker's memlock page budget for zero-copy sends (0 = none: not charged, or --zc-page-budget 0)") \
    X(partial_sends, count, "sends that completed short and were continued from where they stopped") \
    X(responses_coalesced, count, "responses that needed no send of their own: pipelined, they went out in one send with others (sends = responses + partial_sends - responses_coalesced)") \
    X(recv_enobufs, count, "multishot receives ended by an empty provided-buffer ring (-ENOBUFS) and re-armed") \
    X(http_errors, count, "requests answered with an error status (400, 405, 408, 431, 501)") \
    X(idle_closed, count, "connections closed by the idle timeout") \
    X(header_timeouts, count, "request heads not complete within --header-timeout: answered 408 and closed") \
    X(send_errors, count, "sends that failed with an error other than -ENOMEM (peer reset...)") \
    X(cq_overflows, gauge, "completion-queue overflows reported by the kernel") \
    X(calibration_work_ns, count, "thread CPU nanoseconds of the calibration's injected loop, in the responses it timed (--calibration-work; 0 otherwise)") \
    X(calibration_work_timed, count, "responses whose injected loop was timed: one send in 64 (calibration_work_ns / this = the loop's CPU per response)") \
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
