#define _GNU_SOURCE
#include "http_socket.h"
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return -1;
    p += w; n -= (size_t)w;
  }
  return 0;
}

static const char *find_header(const char *hdrs, const char *name) {
  size_t n = strlen(name);
  for (const char *line = hdrs; line && *line;) {
    if (!strncasecmp(line, name, n) && line[n] == ':') {
      const char *v = line + n + 1;
      while (*v == ' ') v++;
      return v;
    }
    line = strstr(line, "\r\n");
    if (line) line += 2;
  }
  return NULL;
}

int http_do(const char *method, const char *url, const char *extra_headers,
            const uint8_t *body, size_t body_len, http_reply *out) {
  memset(out, 0, sizeof *out);
  if (strncmp(url, "http://", 7)) return -1;
  const char *hostport = url + 7;
  const char *path = strchr(hostport, '/');
  if (!path) path = "/";
  char host[256];
  size_t hl = (size_t)(path - hostport);
  if (*path == '/' && hl >= sizeof host) return -1;
  snprintf(host, sizeof host, "%.*s", (int)(strchr(hostport, '/') ? hl : strlen(hostport)), hostport);
  char *colon = strrchr(host, ':');
  const char *port = "80";
  char hostname[256];
  snprintf(hostname, sizeof hostname, "%s", host);
  if (colon) { hostname[colon - host] = 0; port = colon + 1; }

  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_family = AF_INET; hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(hostname, port, &hints, &ai)) return -1;
  int fd = socket(ai->ai_family, ai->ai_socktype, 0);
  if (fd < 0) { freeaddrinfo(ai); return -1; }
  struct timeval tv = { 30, 0 };
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, ai->ai_addr, ai->ai_addrlen)) { freeaddrinfo(ai); close(fd); return -1; }
  freeaddrinfo(ai);

  char *head = NULL;
  int hn = asprintf(&head, "%s %s HTTP/1.1\r\nhost: %s\r\nconnection: close\r\ncontent-length: %zu\r\n%s\r\n",
                    method, path, host, body_len, extra_headers ? extra_headers : "");
  int rc = hn < 0 || write_all(fd, head, (size_t)hn) || (body_len && write_all(fd, body, body_len));
  free(head);
  if (rc) { close(fd); return -1; }

  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (len + 2048 > cap) { cap *= 2; buf = realloc(buf, cap); }
    ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
    if (r < 0) { free(buf); close(fd); return -1; }
    if (r == 0) break;
    len += (size_t)r;
  }
  close(fd);
  buf[len] = 0;
  char *sep = strstr(buf, "\r\n\r\n");
  if (!sep || strncmp(buf, "HTTP/1.", 7)) { free(buf); return -1; }
  out->status = atoi(buf + 9);
  char *first_eol = strstr(buf, "\r\n");
  size_t hlen = (size_t)(sep + 2 - (first_eol + 2));
  out->headers = strndup(first_eol + 2, hlen);
  const char *b = sep + 4;
  size_t blen = len - (size_t)(b - buf);
  const char *te = find_header(out->headers, "transfer-encoding");
  out->body = malloc(blen + 1);
  if (te && !strncasecmp(te, "chunked", 7)) {
    size_t o = 0;
    const char *p = b;
    for (;;) {
      size_t n = strtoul(p, NULL, 16);
      p = strstr(p, "\r\n");
      if (!p || n == 0) break;
      p += 2;
      if ((size_t)(p - b) + n > blen) break;
      memcpy(out->body + o, p, n); o += n; p += n + 2;
    }
    out->body_len = o;
  } else {
    const char *cl = find_header(out->headers, "content-length");
    if (cl && (size_t)atol(cl) < blen) blen = (size_t)atol(cl);
    memcpy(out->body, b, blen);
    out->body_len = blen;
  }
  out->body[out->body_len] = 0;
  free(buf);
  return 0;
}

void http_reply_free(http_reply *r) {
  free(r->headers); free(r->body);
  memset(r, 0, sizeof *r);
}

int counting_send(void *userdata, const edrlink_http_request *req, edrlink_http_response *resp) {
  counting_transport *t = userdata;
  __atomic_add_fetch(&t->calls, 1, __ATOMIC_SEQ_CST);
  if (t->fail_all) { __atomic_add_fetch(&t->failures, 1, __ATOMIC_SEQ_CST); return -1; }
  if (t->use_builtin) return edrlink_builtin_transport_send(req, resp, NULL) == EDRLINK_OK ? 0 : -1;

  size_t cap = 256, len = 0;
  char *hdrs = malloc(cap);
  hdrs[0] = 0;
  for (size_t i = 0; i < req->headers_len; i++) {
    size_t need = strlen(req->headers[i].name) + strlen(req->headers[i].value) + 5;
    if (len + need >= cap) { cap = (len + need) * 2; hdrs = realloc(hdrs, cap); }
    len += (size_t)sprintf(hdrs + len, "%s: %s\r\n", req->headers[i].name, req->headers[i].value);
  }
  http_reply r;
  int rc = http_do(req->method, req->url, hdrs, req->body, req->body_len, &r);
  free(hdrs);
  if (rc) { __atomic_add_fetch(&t->failures, 1, __ATOMIC_SEQ_CST); return -1; }
  edrlink_http_response_set_status(resp, (uint16_t)r.status, NULL);
  /* headers: split the raw block */
  for (char *line = r.headers; line && *line;) {
    char *eol = strstr(line, "\r\n");
    if (eol) *eol = 0;
    char *colon = strchr(line, ':');
    if (colon) {
      *colon = 0;
      char *v = colon + 1;
      while (*v == ' ') v++;
      edrlink_http_response_add_header(resp, line, v, NULL);
    }
    line = eol ? eol + 2 : NULL;
  }
  edrlink_http_response_set_body(resp, r.body, r.body_len, NULL);
  http_reply_free(&r);
  return 0;
}

void counting_free(void *userdata) {
  counting_transport *t = userdata;
  t->freed++;
}
