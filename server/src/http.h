/* http.h - HTTP/1.x request-head parser: pure functions, no I/O, no allocation (fuzzed). */
#ifndef ZCB_HTTP_H
#define ZCB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum http_method { HTTP_GET, HTTP_HEAD, HTTP_OTHER };

struct http_request {
    enum http_method method;
    int minor_version;       /* HTTP/1.<minor> */
    bool keep_alive;         /* after the version default and any Connection header */
    bool has_transfer_encoding;
    uint64_t content_length; /* body bytes that follow the head */
};

/* Results of http_parse_request() besides a positive head length. */
#define HTTP_INCOMPLETE 0
#define HTTP_MALFORMED (-1)

/*
 * Parse one request head at the start of buf.
 * Returns the number of bytes of the head (leading empty lines, request line, headers and
 * the blank line) when it is complete and valid, HTTP_INCOMPLETE when more bytes are
 * needed, HTTP_MALFORMED when what is there can never become a valid request.
 */
long http_parse_request(const char *buf, size_t len, struct http_request *req);

#endif
