/* send.h - what the send paths (send_<mode>.c) share with the common part (send.c). Only the
 * send files include it; the rest of the server sees struct send_path in server.h. */
#ifndef ZCB_SEND_H
#define ZCB_SEND_H

#include "server.h"

/* Every mode of zcb_modes.h has its path, named after its ID: send_path_ZC in send_zc.c... */
#define ZCB_PATH_DECLARE(id, name, zero_copy, registered, user_pages, limit, kernel, needs, title) \
    extern const struct send_path send_path_##id;
ZCB_SEND_MODES(ZCB_PATH_DECLARE)
#undef ZCB_PATH_DECLARE

static inline uint32_t conn_slot(const struct worker *w, const struct conn *c)
{
    return (uint32_t)(c - w->conns);
}

/* The connection a send completion belongs to (NULL: a stale one, which cannot happen: a slot
 * is freed only without a send in flight). */
struct conn *send_conn(struct worker *w, uint64_t user_data);
const struct response *send_head_response(const struct worker *w, const struct conn *c);

/* A send of len bytes is under way (one per connection at a time). */
void send_started(struct conn *c, uint32_t len);
/* The regular send every mode falls back to, and the resend of the bytes a failed zero-copy
 * send was asked to send. */
void send_regular(struct worker *w, struct conn *c, const char *p, uint32_t len);
void send_resend_regular(struct worker *w, struct conn *c);
/* The send in flight ended: res > 0 bytes reached the socket (accounted, the connection goes
 * on), res <= 0 it failed (counted in send_errors; send_abandoned: not counted). */
void send_finished(struct worker *w, struct conn *c, int res);
void send_abandoned(struct worker *w, struct conn *c, int res);
/* The kernel refused a zero-copy send's charge (ENOMEM, ENOBUFS): resend the same bytes the
 * regular way, counted in *fallbacks (only when the resend is really issued). */
void send_refused(struct worker *w, struct conn *c, int res, uint64_t *fallbacks);

/* Zero-copy bookkeeping shared by every zero-copy path: the sends whose buffer the kernel
 * holds and the memlock pages it charges them. */
uint32_t zc_pages_for(const struct worker *w, uint32_t len);
void zc_hold(struct worker *w, uint32_t pages);
void zc_release(struct worker *w, uint64_t sends, uint64_t pages);

/* send_zc.c: SEND_ZC's submission and the completion every io_uring zero-copy send shares
 * (SEND_ZC, SENDMSG_ZC: a result, then a notification). */
void zc_send_submit(struct worker *w, struct conn *c, const struct response *r, const char *p, uint32_t len,
                    uint32_t pages);
void zc_send_complete(struct worker *w, const struct io_uring_cqe *cqe);
unsigned zc_send_flags(const struct worker *w);

/* Per-slot state of a path, in one mapping touched only for the slots in use. */
void *path_conns_map(struct worker *w, size_t per_conn);
void path_conns_unmap(struct worker *w, size_t per_conn);

#endif
