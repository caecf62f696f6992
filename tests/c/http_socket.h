/* Plain-socket HTTP/1.1 client for loopback tests (http:// only), and an
 * edrlink host transport built on it that counts its calls. Test code only. */
#ifndef HTTP_SOCKET_H
#define HTTP_SOCKET_H
#include <stddef.h>
#include <stdint.h>
#include "edrlink.h"

typedef struct {
  int status;
  char *headers;   /* raw header block, "name: value\r\n"... (malloc'd) */
  uint8_t *body;   /* malloc'd, NUL-terminated for convenience */
  size_t body_len;
} http_reply;

/* extra_headers: "name: value\r\n" lines or NULL. Returns 0 on success. */
int http_do(const char *method, const char *url, const char *extra_headers,
            const uint8_t *body, size_t body_len, http_reply *out);
void http_reply_free(http_reply *r);

/* The counting socket transport (userdata = counting_transport *). */
typedef struct {
  volatile long calls;      /* incremented atomically */
  volatile long failures;
  int fail_all;             /* simulate a dead network: return non-zero */
  int freed;                /* set by free_userdata */
  int use_builtin;          /* forward through edrlink_builtin_transport_send */
} counting_transport;

int counting_send(void *userdata, const edrlink_http_request *req, edrlink_http_response *resp);
void counting_free(void *userdata);
#endif
