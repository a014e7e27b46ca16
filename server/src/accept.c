/* accept.c - cold path: running out of file descriptors while accepting.
 *
 * io_uring's accept allocates the descriptor before it looks for a connection, so at EMFILE or
 * ENFILE it fails at once, pending connection or not: re-arming straight away busy-loops. The
 * worker instead pauses accepting for ZCB_ACCEPT_BACKOFF_TICKS, and meanwhile refuses the
 * connections already waiting (accepted with a reserved descriptor and closed at once) so their
 * clients learn it now instead of at their connect timeout. Each refused connection is counted
 * once; one line is logged per episode, when it ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server.h"

#define ZCB_REFUSE_BATCH 1024 /* connections refused per back-off at most */

void accept_reserve_open(struct worker *w)
{
    w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Accept and close the connections waiting on the listener, with the descriptor held in
 * reserve for that. The multishot accept is not armed now, so no ring operation sees the
 * listener's temporary O_NONBLOCK. */
static uint32_t refuse_pending(struct worker *w)
{
    int flags = fcntl(w->listen_fd, F_GETFL);
    uint32_t n = 0;

    if (w->reserve_fd < 0 || flags < 0 || fcntl(w->listen_fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return 0;
    close(w->reserve_fd);
    while (n < ZCB_REFUSE_BATCH) {
        int fd = accept4(w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            break; /* EAGAIN: none left; EMFILE: another thread took the reserve */
        close(fd);
        n++;
    }
    fcntl(w->listen_fd, F_SETFL, flags);
    accept_reserve_open(w);
    return n;
}

/* The accept failed with EMFILE/ENFILE (err > 0); the caller re-arms it after the back-off. */
void accept_backoff_begin(struct worker *w, int err)
{
    uint32_t refused;

    if (!w->fd_episode) {
        w->fd_episode = true;
        w->fd_episode_errno = err;
        w->fd_episode_start = w->tick;
        w->fd_episode_refused = 0;
    }
    refused = refuse_pending(w);
    w->fd_episode_refused += refused;
    w->st->conns_rejected += refused;
    w->st->accept_backoffs++;
    w->accept_paused = true;
    w->accept_resume_tick = w->tick + ZCB_ACCEPT_BACKOFF_TICKS;
}

/* An accept succeeded again, or the worker stops: report the episode, once. */
void accept_backoff_end(struct worker *w)
{
    if (!w->fd_episode)
        return;
    w->fd_episode = false;
    fprintf(stderr, "zcb-server: worker %d: out of file descriptors (%s) for %.1f s: accepting paused "
                    "every %d ms, %llu connections refused\n",
            w->id, strerror(w->fd_episode_errno), (double)(w->tick - w->fd_episode_start) * ZCB_TICK_MS / 1000.0,
            ZCB_ACCEPT_BACKOFF_TICKS * ZCB_TICK_MS, (unsigned long long)w->fd_episode_refused);
}
