/*
 * zcb_modes.h - the server's send modes: the one list of them, read by the C server (--send,
 * --list-modes, the final JSON, the table of send paths) and by zcbench/core/arms.py, which
 * turns every entry into an arm of the bench, and zcbench/host/uring.py, which probes what each
 * needs. Add a mode here, and its send path in src/send_<name>.c (a `const struct send_path
 * send_path_<ID>`), and both sides see it; nothing else lists them.
 *
 * X(ID, name, zero_copy, registered_buffer, user_pages, limit, kernel, needs, title)
 *   ID                 the C enum suffix (SEND_<ID>) and the send path's symbol (send_path_<ID>)
 *   name               --send NAME, and the arm's name in zcbench
 *   zero_copy          1: the mode asks the kernel not to copy the response bytes
 *   registered_buffer  1: it sends from a buffer registered with the ring once
 *   user_pages         1: the bytes come from the server's own memory, so a zero-copy mode pins
 *                      user pages and its copied share applies; 0: they come from the page
 *                      cache (splice), no user page is involved and the copied share does not
 *   limit              what bounds the bytes it may hold in flight ("memlock": RLIMIT_MEMLOCK
 *                      pages unless CAP_IPC_LOCK; "optmem_max": per-socket option memory for
 *                      its completion notifications, and memlock too; "none"): the server keeps
 *                      a cap or budget below it
 *   kernel             the oldest kernel with what it needs
 *   needs              what the running kernel must offer, space-separated: io_uring opcodes
 *                      (their IORING_OP_ names without the prefix) and socket options (SO_*);
 *                      probed by the server (--list-modes, --send) and by zcbench's probe
 *   title              how reports name it
 *
 * Keep every X(...) entry on one line: arms.py and uring.py read them line by line.
 */
#ifndef ZCB_MODES_H
#define ZCB_MODES_H

#define ZCB_SEND_MODES(X) \
    X(REGULAR, "regular", 0, 0, 1, "none", "5.6", "SEND", "Regular Send") \
    X(ZC, "zc", 1, 0, 1, "memlock", "6.0", "SEND_ZC", "ZC Send") \
    X(ZC_FIXED, "zc-fixed", 1, 1, 1, "memlock", "6.0", "SEND_ZC", "ZC Fixed-Buffer Send") \
    X(SENDMSG_ZC, "sendmsg-zc", 1, 0, 1, "memlock", "6.1", "SENDMSG_ZC", "SENDMSG_ZC (head + body iovecs)") \
    X(MSG_ZEROCOPY, "msg-zerocopy", 1, 0, 1, "optmem_max", "6.0", "SENDMSG RECVMSG SO_ZEROCOPY", "MSG_ZEROCOPY sendmsg") \
    X(SPLICE, "splice", 1, 0, 0, "none", "5.7", "SEND SPLICE", "Splice from the page cache") \
    X(ADAPTIVE, "adaptive", 1, 0, 1, "memlock", "6.0", "SEND_ZC", "Adaptive ZC (>= --zc-min-bytes)")

#endif
