/*
 * zcb_modes.h - the server's send modes: the one list of them, read by the C server (--send,
 * --list-modes, the final JSON) and by zcbench/core/arms.py, which turns every entry into an
 * arm of the bench. Add a mode here, and its send path in src/send_<name>.c, and both sides
 * see it; nothing else lists them.
 *
 * X(ID, name, zero_copy, registered_buffer, limit, kernel, title)
 *   ID                 the C enum suffix (SEND_<ID>)
 *   name               --send NAME, and the arm's name in zcbench
 *   zero_copy          1: the mode asks the kernel not to copy the user's pages
 *   registered_buffer  1: it sends from a buffer registered with the ring once
 *   limit              what bounds the bytes it may hold in flight ("memlock", "optmem_max",
 *                      "none"): the server keeps a cap or budget below it
 *   kernel             the oldest kernel with the operation it needs
 *   title              how reports name it
 *
 * Keep every X(...) entry on one line: arms.py reads them line by line.
 */
#ifndef ZCB_MODES_H
#define ZCB_MODES_H

#define ZCB_SEND_MODES(X) \
    X(REGULAR, "regular", 0, 0, "none", "5.6", "Regular Send") \
    X(ZC, "zc", 1, 0, "memlock", "6.0", "ZC Send") \
    X(ZC_FIXED, "zc-fixed", 1, 1, "memlock", "6.0", "ZC Fixed-Buffer Send")

#endif
