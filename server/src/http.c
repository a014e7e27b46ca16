/* http.c - HTTP/1.x request-head parser (RFC 9112 subset: what a static-response server needs). */
#include "http.h"

#include <string.h>

/* tchar from RFC 9110 5.6.2: the characters of methods and header names. */
static bool is_tchar(unsigned char ch)
{
    if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
        return true;
    return ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static bool is_vchar(unsigned char ch)
{
    return ch > 0x20 && ch < 0x7f;
}

static bool span_equals_nocase(const char *s, size_t n, const char *lit)
{
    size_t i;

    if (strlen(lit) != n)
        return false;
    for (i = 0; i < n; i++) {
        char a = s[i], b = lit[i];
        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (a != b)
            return false;
    }
    return true;
}

/* Bytes before the first "\r\n", or -1 when the buffer holds no complete line. A bare LF
 * (not preceded by CR) is reported as -2: we do not accept LF-only line endings. */
static long line_length(const char *buf, size_t len)
{
    const char *lf = memchr(buf, '\n', len);

    if (lf == NULL)
        return -1;
    if (lf == buf || lf[-1] != '\r')
        return -2;
    return (long)(lf - buf) - 1;
}

/* "METHOD SP request-target SP HTTP/1.d" */
static bool parse_request_line(const char *s, size_t n, struct http_request *req)
{
    size_t i = 0, start;

    while (i < n && is_tchar((unsigned char)s[i]))
        i++;
    if (i == 0 || i >= n || s[i] != ' ')
        return false;
    if (i == 3 && memcmp(s, "GET", 3) == 0)
        req->method = HTTP_GET;
    else if (i == 4 && memcmp(s, "HEAD", 4) == 0)
        req->method = HTTP_HEAD;
    else
        req->method = HTTP_OTHER;
    start = ++i;
    while (i < n && is_vchar((unsigned char)s[i]))
        i++;
    if (i == start || i >= n || s[i] != ' ')
        return false;
    i++;
    if (n - i != 8 || memcmp(s + i, "HTTP/1.", 7) != 0 || s[i + 7] < '0' || s[i + 7] > '9')
        return false;
    req->minor_version = s[i + 7] - '0';
    return true;
}

/* Connection: a comma-separated list of tokens; "close" wins over "keep-alive". */
static void parse_connection(const char *v, size_t n, bool *close, bool *keep_alive)
{
    size_t i = 0;

    while (i < n) {
        size_t start, end;
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        start = i;
        while (i < n && v[i] != ',')
            i++;
        end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (span_equals_nocase(v + start, end - start, "close"))
            *close = true;
        else if (span_equals_nocase(v + start, end - start, "keep-alive"))
            *keep_alive = true;
    }
}

static bool parse_content_length(const char *v, size_t n, uint64_t *out)
{
    uint64_t value = 0;
    size_t i;

    if (n == 0 || n > 18) /* 18 digits cannot overflow uint64_t */
        return false;
    for (i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        value = value * 10 + (uint64_t)(v[i] - '0');
    }
    *out = value;
    return true;
}

/* One "name: value" line (without its CRLF). */
static bool parse_header(const char *s, size_t n, struct http_request *req, bool *close,
                         bool *keep_alive, bool *seen_length)
{
    size_t name_len = 0, vstart, vend, i;
    uint64_t length;

    while (name_len < n && is_tchar((unsigned char)s[name_len]))
        name_len++;
    if (name_len == 0 || name_len >= n || s[name_len] != ':')
        return false;
    vstart = name_len + 1;
    while (vstart < n && (s[vstart] == ' ' || s[vstart] == '\t'))
        vstart++;
    vend = n;
    while (vend > vstart && (s[vend - 1] == ' ' || s[vend - 1] == '\t'))
        vend--;
    for (i = vstart; i < vend; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return false;
    }
    if (span_equals_nocase(s, name_len, "connection")) {
        parse_connection(s + vstart, vend - vstart, close, keep_alive);
    } else if (span_equals_nocase(s, name_len, "content-length")) {
        if (!parse_content_length(s + vstart, vend - vstart, &length))
            return false;
        /* Differing repeated lengths are a request-smuggling vector: reject. */
        if (*seen_length && length != req->content_length)
            return false;
        *seen_length = true;
        req->content_length = length;
    } else if (span_equals_nocase(s, name_len, "transfer-encoding")) {
        req->has_transfer_encoding = true;
    }
    return true;
}

long http_parse_request(const char *buf, size_t len, struct http_request *req)
{
    size_t pos = 0;
    long n;
    bool close = false, keep_alive = false, seen_length = false;

    memset(req, 0, sizeof(*req));
    /* RFC 9112 2.2: ignore empty lines before the request line. */
    while (len - pos >= 2 && buf[pos] == '\r' && buf[pos + 1] == '\n')
        pos += 2;
    if (len - pos == 1 && buf[pos] == '\r')
        return HTTP_INCOMPLETE;
    if (pos < len && buf[pos] == '\n')
        return HTTP_MALFORMED;

    n = line_length(buf + pos, len - pos);
    if (n == -2)
        return HTTP_MALFORMED;
    if (n == -1) {
        /* Incomplete line: reject early if it already holds a byte no request line has. */
        size_t i;
        for (i = pos; i < len; i++) {
            unsigned char ch = (unsigned char)buf[i];
            if ((ch < 0x20 && ch != '\r') || ch >= 0x7f)
                return HTTP_MALFORMED;
        }
        return HTTP_INCOMPLETE;
    }
    if (!parse_request_line(buf + pos, (size_t)n, req))
        return HTTP_MALFORMED;
    pos += (size_t)n + 2;

    for (;;) {
        n = line_length(buf + pos, len - pos);
        if (n == -2)
            return HTTP_MALFORMED;
        if (n == -1)
            return HTTP_INCOMPLETE;
        if (n == 0) {
            pos += 2;
            break;
        }
        /* obs-fold (a line starting with white space) is rejected, as RFC 9112 5.2 allows. */
        if (buf[pos] == ' ' || buf[pos] == '\t')
            return HTTP_MALFORMED;
        if (!parse_header(buf + pos, (size_t)n, req, &close, &keep_alive, &seen_length))
            return HTTP_MALFORMED;
        pos += (size_t)n + 2;
    }
    req->keep_alive = !close && (req->minor_version >= 1 || keep_alive);
    return (long)pos;
}
