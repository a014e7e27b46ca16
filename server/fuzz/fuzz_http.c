/* libFuzzer target for the request-head parser: it must never read outside its input, and
 * what it reports must be self-consistent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_request req;
    /* A private copy, exactly `size` bytes long, so ASan sees any over-read. */
    char *buf = malloc(size ? size : 1);
    long n;

    memcpy(buf, data, size);
    n = http_parse_request(buf, size, &req);
    if (n > (long)size || n < HTTP_MALFORMED)
        abort();
    if (n > 0) {
        /* A complete head ends with the blank line, and parsing just it gives the same answer. */
        struct http_request again;
        if (n < 4 || memcmp(buf + n - 4, "\r\n\r\n", 4) != 0)
            abort();
        if (http_parse_request(buf, (size_t)n, &again) != n || memcmp(&req, &again, sizeof(req)) != 0)
            abort();
        if (req.method != HTTP_GET && req.method != HTTP_HEAD && req.method != HTTP_OTHER)
            abort();
    } else if (n == HTTP_INCOMPLETE && size > 0) {
        /* An incomplete prefix stays incomplete or becomes malformed when cut shorter. */
        struct http_request shorter;
        if (http_parse_request(buf, size - 1, &shorter) > 0)
            abort();
    }
    free(buf);
    return 0;
}
