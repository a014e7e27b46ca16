/* response.c - the fixed responses, built once at start-up in one page-aligned region. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "server.h"

/* The body is a printable, position-dependent pattern so clients can check every byte:
 * body[i] = ZCB_BODY_ALPHABET[i % 36]. */
#define ZCB_BODY_ALPHABET "0123456789abcdefghijklmnopqrstuvwxyz"

/* The %s before the length is optional white space (RFC 9110 5.5), one space or none: see
 * ok_body_length(). */
static const char ok_head_fmt[] = "HTTP/1.1 200 OK\r\nContent-Length: %s%zu\r\nContent-Type: text/plain\r\n%s\r\n";
static const char close_header[] = "Connection: close\r\n";
static const char keep_alive_header[] = "Connection: keep-alive\r\n";

static const char *const error_responses[] = {
    [RESP_400] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    [RESP_408] = "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    [RESP_405] = "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    [RESP_431] = "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    [RESP_501] = "HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
};

static size_t decimal_digits(size_t v)
{
    size_t d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

/* Head length for a body of `body` bytes (the Content-Length digits depend on it). */
static size_t ok_head_length(size_t body, const char *extra, size_t pad)
{
    return strlen(ok_head_fmt) - 2 * strlen("%s") - strlen("%zu") + pad + decimal_digits(body) + strlen(extra);
}

/*
 * Body length that makes head + body exactly `total` bytes, or (size_t)-1 if total is too
 * small. Where the length's digit count changes (a body of 9 fits 92 bytes, one of 10 needs
 * 94) no body fits exactly; one space of padding before the length closes the gap (*pad = 1).
 */
static size_t ok_body_length(size_t total, const char *extra, size_t *pad)
{
    size_t digits;

    for (*pad = 0; *pad <= 1; (*pad)++) {
        for (digits = 1; digits <= 20; digits++) {
            size_t head = ok_head_length(0, extra, *pad) - 1 + digits;
            if (head > total)
                break;
            if (decimal_digits(total - head) == digits)
                return total - head;
        }
    }
    return (size_t)-1;
}

size_t response_min_size(void)
{
    /* The keep-alive variant has the longest head; every 200 response shares one size. */
    return ok_head_length(0, keep_alive_header, 0);
}

static size_t write_ok(char *dst, size_t total, const char *extra, size_t *head_len)
{
    size_t pad, body = ok_body_length(total, extra, &pad), i;
    int n = sprintf(dst, ok_head_fmt, pad ? " " : "", body, extra);

    for (i = 0; i < body; i++)
        dst[(size_t)n + i] = ZCB_BODY_ALPHABET[i % 36];
    *head_len = (size_t)n;
    return (size_t)n + body;
}

/* How many copies of a response of `len` bytes one coalesced send may carry. */
static uint32_t coalesce_copies(size_t len)
{
    size_t n = ZCB_COALESCE_BYTES / len;

    return n < 1 ? 1 : n > ZCB_COALESCE_MAX ? ZCB_COALESCE_MAX : (uint32_t)n;
}

/* Repeat the first `len` bytes at dst until there are `copies`; returns the bytes they take. */
static size_t replicate(char *dst, size_t len, uint32_t copies)
{
    uint32_t i;

    for (i = 1; i < copies; i++)
        memcpy(dst + (size_t)i * len, dst, len);
    return len * copies;
}

/*
 * The keep-alive 200 responses (GET and HEAD, plain and HTTP/1.0 "Connection: keep-alive") are
 * runs of identical copies, so pipelined requests of one kind are answered by one send. A
 * closing response ends its connection: one copy, and its HEAD variant is its own head.
 */
static const struct keep_alive_kind {
    enum resp_kind get, head;
    const char *extra;
} keep_alive_kinds[] = {
    { RESP_OK, RESP_OK_HEAD, "" },
    { RESP_OK_KEEP_ALIVE, RESP_OK_KEEP_ALIVE_HEAD, keep_alive_header },
};
#define KEEP_ALIVE_KINDS (sizeof(keep_alive_kinds) / sizeof(keep_alive_kinds[0]))

static size_t ok_head_size(size_t total, const char *extra)
{
    size_t pad;

    return total - ok_body_length(total, extra, &pad);
}

static size_t region_bytes(size_t response_size)
{
    size_t need = response_size + 1024, i; /* the closing 200, the error responses */

    for (i = 0; i < KEEP_ALIVE_KINDS; i++) {
        size_t head = ok_head_size(response_size, keep_alive_kinds[i].extra);
        need += response_size * coalesce_copies(response_size) + head * coalesce_copies(head);
    }
    return need;
}

int responses_build(struct response_set *rs, size_t response_size, char *err, size_t errlen)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), off = 0, head, i;
    int k;

    memset(rs, 0, sizeof(*rs));
    if (response_size < response_min_size()) {
        snprintf(err, errlen, "--response-size %zu is too small: a response needs at least %zu bytes",
                 response_size, response_min_size());
        return -1;
    }
    rs->region_len = (region_bytes(response_size) + page - 1) / page * page;
    rs->region = mmap(NULL, rs->region_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (rs->region == MAP_FAILED) {
        snprintf(err, errlen, "cannot map %zu bytes for responses", rs->region_len);
        rs->region = NULL;
        return -1;
    }

    for (i = 0; i < KEEP_ALIVE_KINDS; i++) {
        const struct keep_alive_kind *kind = &keep_alive_kinds[i];
        char *get = rs->region + off, *head_run;
        uint32_t copies = coalesce_copies(response_size);

        write_ok(get, response_size, kind->extra, &head);
        rs->r[kind->get] = (struct response){ get, (uint32_t)response_size, (uint32_t)head, copies, false, false };
        off += replicate(get, response_size, copies);
        head_run = rs->region + off;
        memcpy(head_run, get, head);
        copies = coalesce_copies(head);
        rs->r[kind->head] = (struct response){ head_run, (uint32_t)head, (uint32_t)head, copies, false, false };
        off += replicate(head_run, head, copies);
    }

    rs->r[RESP_OK_CLOSE].data = rs->region + off;
    rs->r[RESP_OK_CLOSE].len = (uint32_t)write_ok(rs->region + off, response_size, close_header, &head);
    rs->r[RESP_OK_CLOSE].head_len = (uint32_t)head;
    rs->r[RESP_OK_CLOSE].copies = 1;
    rs->r[RESP_OK_CLOSE].closes = true;
    rs->r[RESP_OK_CLOSE_HEAD] = (struct response){ rs->region + off, (uint32_t)head, (uint32_t)head, 1, true, false };
    off += response_size;

    for (k = RESP_400; k < RESP_KINDS; k++) {
        size_t n = strlen(error_responses[k]);
        memcpy(rs->region + off, error_responses[k], n);
        rs->r[k] = (struct response){ rs->region + off, (uint32_t)n, (uint32_t)n, 1, true, true };
        off += n;
    }
    return 0;
}

void responses_free(struct response_set *rs)
{
    if (rs->region)
        munmap(rs->region, rs->region_len);
    rs->region = NULL;
}
