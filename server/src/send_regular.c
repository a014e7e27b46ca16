/* send_regular.c - regular: IORING_OP_SEND of the response bytes, the kernel copies them. It is
 * every other mode's fallback too, so send.c holds the operation; this path adds nothing. */
#include "send.h"

const struct send_path send_path_REGULAR = { 0 };
