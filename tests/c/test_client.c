/* The client handle against the real reference service (edrlink-service on
 * loopback), driven through the admin API from C. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "edrlink.h"
#include "harness.h"
#include "http_socket.h"
#include "minijson.h"
#include "suite.h"

#define PARTNER "acme-av"
static const char *URL, *ADMIN, *TMP;
static const char BAD_UTF8[] = {'a', (char)0xff, 'b', 0};
static int device_counter;
int canon_eq_pub(const char *json, const mj *v);

/* --- admin API ---------------------------------------------------------- */

static mj *admin(const char *method, const char *path, const char *json, int *status, char **raw) {
  char url[512], hdrs[512];
  snprintf(url, sizeof url, "%s%s", URL, path);
  snprintf(hdrs, sizeof hdrs, "authorization: Bearer %s\r\ncontent-type: application/json\r\n", ADMIN);
  http_reply r;
  if (http_do(method, url, hdrs, (const uint8_t *)(json ? json : ""), json ? strlen(json) : 0, &r)) {
    if (status) *status = 0;
    return NULL;
  }
  if (status) *status = r.status;
  mj *v = mj_parse((const char *)r.body);
  if (raw) *raw = strdup((const char *)r.body);
  http_reply_free(&r);
  return v;
}

static void set_integration(const char *tenant, int enabled) {
  char path[256], body[64];
  int st;
  snprintf(path, sizeof path, "/admin/tenants/%s/integrations/%s", tenant, PARTNER);
  snprintf(body, sizeof body, "{\"enabled\":%s}", enabled ? "true" : "false");
  mj_free(admin("PUT", path, body, &st, NULL));
  CHECK(st == 200, "PUT integration %s -> %d", tenant, st);
}

static void setup_tenant(const char *tenant) {
  char body[256];
  int st;
  snprintf(body, sizeof body, "{\"tenant_id\":\"%s\",\"region\":\"eu\"}", tenant);
  mj_free(admin("POST", "/admin/tenants", body, &st, NULL));
  CHECK(st == 200 || st == 201, "create tenant %s -> %d", tenant, st);
  set_integration(tenant, 1);
}

/* Returns a malloc'd token; *jti (optional) receives a malloc'd jti. */
static char *new_token(const char *tenant, int lifetime, char **jti) {
  char path[256], body[128];
  int st;
  snprintf(path, sizeof path, "/admin/tenants/%s/integrations/%s/tokens", tenant, PARTNER);
  if (lifetime > 0) snprintf(body, sizeof body, "{\"lifetime_secs\":%d}", lifetime);
  else snprintf(body, sizeof body, "{}");
  mj *v = admin("POST", path, body, &st, NULL);
  CHECK(st == 200 || st == 201, "new token -> %d", st);
  char *tok = mj_str(v, "token") ? strdup(mj_str(v, "token")) : NULL;
  if (jti) *jti = mj_str(v, "jti") ? strdup(mj_str(v, "jti")) : NULL;
  mj_free(v);
  return tok;
}

static long long stat_events(const char *tenant) {
  char path[256];
  int st;
  snprintf(path, sizeof path, "/admin/tenants/%s/stats", tenant);
  mj *v = admin("GET", path, NULL, &st, NULL);
  long long n = mj_int(v, "events", -1);
  mj_free(v);
  return n;
}

static int eicar_alerts(const char *tenant) {
  char path[256];
  int st, n = 0;
  snprintf(path, sizeof path, "/admin/tenants/%s/alerts", tenant);
  mj *v = admin("GET", path, NULL, &st, NULL);
  const mj *a = mj_get(v, "alerts");
  for (size_t i = 0; a && i < a->n; i++) {
    const mj *t = mj_get(a->items[i], "test");
    if (STREQ(mj_str(a->items[i], "title"), "EICAR test file") && t && STREQ(t->text, "true")) n++;
  }
  mj_free(v);
  return n;
}

/* --- client helpers ----------------------------------------------------- */

typedef struct {
  char device_id[64];
  edrlink_client_options o;
} opts_buf;

static void init_opts(opts_buf *b) {
  memset(b, 0, sizeof *b);
  snprintf(b->device_id, sizeof b->device_id, "c-device-%d-%d", (int)getpid(), ++device_counter);
  b->o.device_id = b->device_id;
  b->o.hostname = "c-test-host";
  b->o.os = "linux";
  b->o.os_version = "6.1";
  b->o.product = "Acme AV for C";
  b->o.product_version = "1.2.3";
  b->o.op_timeout_secs = 10;
}

static edrlink_client *new_client(const edrlink_transport *t, const char *data_dir) {
  opts_buf b;
  init_opts(&b);
  b.o.data_dir = data_dir;
  edrlink_client *c = NULL;
  edrlink_error *err = NULL;
  CHECK_RC(edrlink_client_new(&b.o, t, &c, &err), EDRLINK_OK);
  if (err) { fprintf(stderr, "   %s\n", edrlink_error_message(err)); edrlink_error_free(err); }
  return c;
}

static edrlink_result enroll(edrlink_client *c, const char *token, edrlink_health *h) {
  edrlink_error *err = NULL;
  edrlink_result rc = edrlink_client_enroll(c, token, h, &err);
  if (err) edrlink_error_free(err);
  return rc;
}

static const char *GENERIC = "{\"type\":\"generic\",\"time\":\"2026-11-23T12:00:00Z\",\"name\":\"process_start\",\"data\":{\"pid\":42}}";

/* --- tests -------------------------------------------------------------- */

static void test_client_args(void) {
  SECTION("client: argument errors");
  edrlink_error *err = NULL;
  edrlink_client *c = (edrlink_client *)0x1;
  opts_buf b;
  init_opts(&b);
  CHECK_RC(edrlink_client_new(NULL, NULL, &c, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_client_new(&b.o, NULL, NULL, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  b.o.device_id = NULL;
  CHECK_RC(edrlink_client_new(&b.o, NULL, &c, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  init_opts(&b);
  b.o.hostname = BAD_UTF8;
  CHECK_RC(edrlink_client_new(&b.o, NULL, &c, &err), EDRLINK_INVALID_UTF8);
  expect_err(&err, EDRLINK_INVALID_UTF8, __LINE__);
  init_opts(&b);
  b.o.product = "";
  CHECK_RC(edrlink_client_new(&b.o, NULL, &c, &err), EDRLINK_INVALID_ARGUMENT);
  expect_err(&err, EDRLINK_INVALID_ARGUMENT, __LINE__);
  init_opts(&b);
  b.o.service_url = BAD_UTF8;
  CHECK_RC(edrlink_client_new(&b.o, NULL, &c, &err), EDRLINK_INVALID_UTF8);
  expect_err(&err, EDRLINK_INVALID_UTF8, __LINE__);
  init_opts(&b);
  b.o.data_dir = "";
  CHECK_RC(edrlink_client_new(&b.o, NULL, &c, &err), EDRLINK_INVALID_ARGUMENT);
  expect_err(&err, EDRLINK_INVALID_ARGUMENT, __LINE__);
  init_opts(&b);
  b.o.data_dir = "/proc/edrlink-cannot-create";
  CHECK_RC(edrlink_client_new(&b.o, NULL, &c, &err), EDRLINK_STORAGE);
  expect_err(&err, EDRLINK_STORAGE, __LINE__);
  CHECK(c == (edrlink_client *)0x1, "out_client untouched on failures");
  /* data_dir is a path: any bytes, not only UTF-8 */
  char odd_dir[600];
  snprintf(odd_dir, sizeof odd_dir, "%s/dir-\xff\xfe", TMP);
  init_opts(&b);
  b.o.data_dir = odd_dir;
  CHECK_RC(edrlink_client_new(&b.o, NULL, &c, &err), EDRLINK_OK);
  struct stat dst;
  CHECK(stat(odd_dir, &dst) == 0 && (dst.st_mode & 0777) == 0700, "non-UTF-8 data_dir created 0700");
  edrlink_client_free(c);
  c = (edrlink_client *)0x1;

  /* a transport without send: refused, and its userdata released exactly once */
  counting_transport ct = {0};
  edrlink_transport t = {&ct, NULL, counting_free};
  init_opts(&b);
  CHECK_RC(edrlink_client_new(&b.o, &t, &c, &err), EDRLINK_INVALID_ARGUMENT);
  expect_err(&err, EDRLINK_INVALID_ARGUMENT, __LINE__);
  CHECK(ct.freed == 1, "free_userdata called once on failure (%d)", ct.freed);
  /* a valid transport but a failing option: userdata still released once */
  counting_transport ct2 = {0};
  edrlink_transport t2 = {&ct2, counting_send, counting_free};
  b.o.os = NULL;
  CHECK_RC(edrlink_client_new(&b.o, &t2, &c, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK(ct2.freed == 1, "free_userdata called once on failure (%d)", ct2.freed);

  /* NULL client for every client function */
  edrlink_health h;
  edrlink_flow_state f;
  edrlink_flush_outcome fo;
  char *js = NULL;
  edrlink_detection d = {0};
  CHECK_RC(edrlink_client_enroll(NULL, "t", &h, &err), EDRLINK_NULL_POINTER); expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_client_enroll_package(NULL, "{}", &h, &err), EDRLINK_NULL_POINTER); expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_client_handshake(NULL, &f, &err), EDRLINK_NULL_POINTER); expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_client_submit_json(NULL, GENERIC, &err), EDRLINK_NULL_POINTER); expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_client_submit_detection(NULL, &d, &err), EDRLINK_NULL_POINTER); expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_client_send_test_detection(NULL, &err), EDRLINK_NULL_POINTER); expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_client_flush(NULL, 1, &fo, &err), EDRLINK_NULL_POINTER); expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_client_health(NULL, &h, &err), EDRLINK_NULL_POINTER); expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_client_health_json(NULL, &js, &err), EDRLINK_NULL_POINTER); expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_client_offboard(NULL, NULL, &err), EDRLINK_NULL_POINTER); expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);

  /* a fresh client: state errors, string errors */
  c = new_client(NULL, NULL);
  CHECK_RC(edrlink_client_handshake(c, &f, &err), EDRLINK_INVALID_STATE); expect_err(&err, EDRLINK_INVALID_STATE, __LINE__);
  CHECK_RC(edrlink_client_offboard(c, NULL, &err), EDRLINK_INVALID_STATE); expect_err(&err, EDRLINK_INVALID_STATE, __LINE__);
  CHECK_RC(edrlink_client_health(c, NULL, &err), EDRLINK_NULL_POINTER); expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_client_health_json(c, NULL, &err), EDRLINK_NULL_POINTER); expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_client_enroll(c, NULL, &h, &err), EDRLINK_NULL_POINTER); expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_client_enroll(c, BAD_UTF8, &h, &err), EDRLINK_INVALID_UTF8); expect_err(&err, EDRLINK_INVALID_UTF8, __LINE__);
  CHECK_RC(edrlink_client_enroll(c, "garbage", &h, &err), EDRLINK_MALFORMED); expect_err(&err, EDRLINK_MALFORMED, __LINE__);
  CHECK_RC(edrlink_client_enroll_package(c, NULL, &h, &err), EDRLINK_NULL_POINTER); expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_client_enroll_package(c, BAD_UTF8, &h, &err), EDRLINK_INVALID_UTF8); expect_err(&err, EDRLINK_INVALID_UTF8, __LINE__);
  CHECK_RC(edrlink_client_enroll_package(c, "{}", &h, &err), EDRLINK_MALFORMED); expect_err(&err, EDRLINK_MALFORMED, __LINE__);
  CHECK_RC(edrlink_client_submit_json(c, NULL, &err), EDRLINK_NULL_POINTER); expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_client_submit_json(c, BAD_UTF8, &err), EDRLINK_INVALID_UTF8); expect_err(&err, EDRLINK_INVALID_UTF8, __LINE__);
  CHECK_RC(edrlink_client_submit_json(c, "{\"type\":\"nope\"}", &err), EDRLINK_MALFORMED); expect_err(&err, EDRLINK_MALFORMED, __LINE__);
  CHECK_RC(edrlink_client_submit_json(c, "{\"type\":\"generic\",\"time\":\"yesterday\",\"name\":\"x\"}", &err), EDRLINK_MALFORMED);
  expect_err(&err, EDRLINK_MALFORMED, __LINE__);
  CHECK_RC(edrlink_client_submit_detection(c, NULL, &err), EDRLINK_NULL_POINTER); expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  d.threat_name = NULL;
  CHECK_RC(edrlink_client_submit_detection(c, &d, &err), EDRLINK_NULL_POINTER); expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  d.threat_name = "Trojan.Test";
  d.severity = 99;
  CHECK_RC(edrlink_client_submit_detection(c, &d, &err), EDRLINK_INVALID_ARGUMENT); expect_err(&err, EDRLINK_INVALID_ARGUMENT, __LINE__);
  d.severity = EDRLINK_SEVERITY_HIGH;
  d.action = 42;
  CHECK_RC(edrlink_client_submit_detection(c, &d, &err), EDRLINK_INVALID_ARGUMENT); expect_err(&err, EDRLINK_INVALID_ARGUMENT, __LINE__);
  d.action = EDRLINK_ACTION_QUARANTINED;
  d.sha256 = "not-hex";
  CHECK_RC(edrlink_client_submit_detection(c, &d, &err), EDRLINK_MALFORMED); expect_err(&err, EDRLINK_MALFORMED, __LINE__);
  d.sha256 = NULL;
  d.time = "not a time";
  CHECK_RC(edrlink_client_submit_detection(c, &d, &err), EDRLINK_MALFORMED); expect_err(&err, EDRLINK_MALFORMED, __LINE__);
  d.time = BAD_UTF8;
  CHECK_RC(edrlink_client_submit_detection(c, &d, &err), EDRLINK_INVALID_UTF8); expect_err(&err, EDRLINK_INVALID_UTF8, __LINE__);
  CHECK_RC(edrlink_client_offboard(c, BAD_UTF8, &err), EDRLINK_INVALID_UTF8); expect_err(&err, EDRLINK_INVALID_UTF8, __LINE__);
  /* events queue before enrollment; flushing them says "not enrolled" and keeps them */
  CHECK_RC(edrlink_client_submit_json(c, GENERIC, &err), EDRLINK_OK);
  fo.delivered = 1234;
  CHECK_RC(edrlink_client_flush(c, 1, &fo, &err), EDRLINK_INVALID_STATE); expect_err(&err, EDRLINK_INVALID_STATE, __LINE__);
  CHECK(fo.delivered == 1234, "outcome untouched on failure");
  CHECK_RC(edrlink_client_health(c, &h, &err), EDRLINK_OK);
  CHECK(!h.onboarded && !h.healthy && h.queued_events == 1 && h.flow == EDRLINK_FLOW_STATE_NONE, "fresh health");
  edrlink_client_free(c);

  /* queue bound */
  init_opts(&b);
  b.o.max_queue_events = 2;
  CHECK_RC(edrlink_client_new(&b.o, NULL, &c, &err), EDRLINK_OK);
  CHECK_RC(edrlink_client_submit_json(c, GENERIC, &err), EDRLINK_OK);
  CHECK_RC(edrlink_client_submit_json(c, GENERIC, &err), EDRLINK_OK);
  CHECK_RC(edrlink_client_submit_json(c, GENERIC, &err), EDRLINK_QUEUE_FULL); expect_err(&err, EDRLINK_QUEUE_FULL, __LINE__);
  CHECK_RC(edrlink_client_send_test_detection(c, &err), EDRLINK_OK); /* detections evict telemetry */
  CHECK_RC(edrlink_client_health(c, &h, &err), EDRLINK_OK);
  CHECK(h.queued_events == 2 && h.dropped_events == 2, "queued %llu dropped %llu", (unsigned long long)h.queued_events,
        (unsigned long long)h.dropped_events);
  edrlink_client_free(c);
}

static void test_enroll_send(void) {
  SECTION("client: enroll, send, EICAR, health (built-in transport)");
  char tenant[64];
  snprintf(tenant, sizeof tenant, "c%d-main", (int)getpid());
  setup_tenant(tenant);
  char *tok = new_token(tenant, 0, NULL);
  edrlink_error *err = NULL;
  char dir[512];
  snprintf(dir, sizeof dir, "%s/agent-main", TMP);
  edrlink_client *c = new_client(NULL, dir);
  edrlink_health h;
  memset(&h, 0xAB, sizeof h);
  CHECK_RC(edrlink_client_enroll(c, tok, &h, &err), EDRLINK_OK);
  if (err) { fprintf(stderr, "   enroll: %s\n", edrlink_error_message(err)); edrlink_error_free(err); err = NULL; }
  CHECK(h.onboarded && h.healthy && h.flow == EDRLINK_FLOW_STATE_OPEN && h.last_handshake > 0 && h.last_error == EDRLINK_OK,
        "health after enroll: onboarded %d healthy %d flow %u", h.onboarded, h.healthy, h.flow);
  struct stat st;
  char cred[600];
  snprintf(cred, sizeof cred, "%s/credential.json", dir);
  CHECK(stat(cred, &st) == 0 && (st.st_mode & 0777) == 0600, "credential stored 0600");

  edrlink_flow_state f = 99;
  CHECK_RC(edrlink_client_handshake(c, &f, &err), EDRLINK_OK);
  CHECK(f == EDRLINK_FLOW_STATE_OPEN, "flow open");
  CHECK_RC(edrlink_client_handshake(c, NULL, &err), EDRLINK_OK);

  for (int i = 0; i < 10; i++) CHECK_RC(edrlink_client_submit_json(c, GENERIC, &err), EDRLINK_OK);
  edrlink_detection d = {0};
  d.threat_name = "Trojan.Win32.Test";
  d.file_path = "C:\\Users\\x\\bad.exe";
  d.sha256 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  d.severity = EDRLINK_SEVERITY_HIGH;
  d.action = EDRLINK_ACTION_QUARANTINED;
  CHECK_RC(edrlink_client_submit_detection(c, &d, &err), EDRLINK_OK);
  d.time = "2026-11-23T12:00:00Z";
  d.file_path = NULL;
  d.sha256 = NULL;
  d.url = "http://bad.example/x";
  d.action = EDRLINK_ACTION_BLOCKED;
  CHECK_RC(edrlink_client_submit_detection(c, &d, &err), EDRLINK_OK);
  CHECK_RC(edrlink_client_send_test_detection(c, &err), EDRLINK_OK);
  CHECK_RC(edrlink_client_health(c, &h, &err), EDRLINK_OK);
  CHECK(h.queued_events == 13, "queued %llu", (unsigned long long)h.queued_events);
  edrlink_flush_outcome fo = {0};
  CHECK_RC(edrlink_client_flush(c, 20, &fo, &err), EDRLINK_OK);
  if (err) { fprintf(stderr, "   flush: %s\n", edrlink_error_message(err)); edrlink_error_free(err); err = NULL; }
  /* the client adds its own heartbeat event to the first batch */
  CHECK(fo.delivered >= 13 && fo.delivered <= 14 && fo.queued == 0, "delivered %llu queued %llu", (unsigned long long)fo.delivered,
        (unsigned long long)fo.queued);
  CHECK(stat_events(tenant) == (long long)fo.delivered, "service stored %lld events", stat_events(tenant));
  CHECK(eicar_alerts(tenant) == 1, "one EICAR test alert (%d)", eicar_alerts(tenant));
  CHECK_RC(edrlink_client_flush(c, 1, NULL, &err), EDRLINK_OK);

  CHECK_RC(edrlink_client_health(c, &h, &err), EDRLINK_OK);
  CHECK(h.sent_events == fo.delivered && h.queued_events == 0 && h.last_send > 0 && h.oldest_queued_age == -1, "health after flush");
  char *js = NULL;
  CHECK_RC(edrlink_client_health_json(c, &js, &err), EDRLINK_OK);
  mj *v = mj_parse(js);
  CHECK(v && mj_str(v, "installation_id") && STREQ(mj_str(v, "flow"), "open") && mj_int(v, "sent_events", -1) == (long long)fo.delivered,
        "health json %s", js);
  mj_free(v);
  edrlink_string_free(js);
  edrlink_client_free(c);

  /* a new client on the same data dir starts enrolled and can send */
  c = new_client(NULL, dir);
  CHECK_RC(edrlink_client_health(c, &h, &err), EDRLINK_OK);
  CHECK(h.onboarded, "credential reloaded from data_dir");
  CHECK_RC(edrlink_client_submit_json(c, GENERIC, &err), EDRLINK_OK);
  CHECK_RC(edrlink_client_flush(c, 20, &fo, &err), EDRLINK_OK);
  CHECK(fo.delivered >= 1 && fo.queued == 0, "delivered after restart %llu", (unsigned long long)fo.delivered);

  /* partner opt-out */
  CHECK_RC(edrlink_client_offboard(c, NULL, &err), EDRLINK_OK);
  if (err) { fprintf(stderr, "   offboard: %s\n", edrlink_error_message(err)); edrlink_error_free(err); err = NULL; }
  CHECK_RC(edrlink_client_health(c, &h, &err), EDRLINK_OK);
  CHECK(!h.onboarded, "offboarded");
  CHECK(stat(cred, &st) != 0, "credential deleted");
  edrlink_client_free(c);

  /* the token with a service URL override, and a verified keyset from the service */
  opts_buf b;
  init_opts(&b);
  b.o.service_url = URL;
  b.o.gzip = true;
  CHECK_RC(edrlink_client_new(&b.o, NULL, &c, &err), EDRLINK_OK);
  CHECK_RC(enroll(c, tok, NULL), EDRLINK_OK);
  CHECK_RC(edrlink_client_submit_json(c, GENERIC, &err), EDRLINK_OK);
  CHECK_RC(edrlink_client_flush(c, 20, &fo, &err), EDRLINK_OK);
  CHECK(fo.delivered >= 1 && fo.queued == 0, "gzip batch delivered");
  edrlink_client_free(c);

  SECTION("tokens against the live keyset");
  char keys_url[512];
  snprintf(keys_url, sizeof keys_url, "%s/v1/keys", URL);
  http_reply r;
  CHECK(http_do("GET", keys_url, NULL, NULL, 0, &r) == 0 && r.status == 200, "GET /v1/keys");
  const char *keyset = (const char *)r.body;
  char *info = NULL;
  CHECK_RC(edrlink_token_inspect(tok, (int64_t)time(NULL), &info, &err), EDRLINK_OK);
  mj *iv = mj_parse(info);
  const mj *claims = mj_get(iv, "claims");
  long long exp = mj_int(claims, "exp", 0);
  CHECK(STREQ(mj_str(claims, "tenant_id"), tenant) && STREQ(mj_str(iv, "status"), "valid") && mj_int(iv, "seconds_left", 0) > 0,
        "inspect %s", info);
  char *vclaims = NULL;
  CHECK_RC(edrlink_token_verify(tok, keyset, (int64_t)time(NULL), 60, &vclaims, &err), EDRLINK_OK);
  CHECK(vclaims && canon_eq_pub(vclaims, claims), "verified claims equal inspected ones");
  edrlink_string_free(vclaims);
  CHECK_RC(edrlink_token_verify(tok, keyset, (int64_t)time(NULL), 60, NULL, &err), EDRLINK_OK);
  CHECK_RC(edrlink_token_verify(tok, keyset, exp + 1000, 60, NULL, &err), EDRLINK_TOKEN_EXPIRED);
  expect_err(&err, EDRLINK_TOKEN_EXPIRED, __LINE__);
  CHECK_RC(edrlink_token_verify(tok, keyset, 1000, 60, NULL, &err), EDRLINK_TOKEN_NOT_YET_VALID);
  expect_err(&err, EDRLINK_TOKEN_NOT_YET_VALID, __LINE__);
  CHECK_RC(edrlink_token_verify(tok, "{\"keys\":[]}", (int64_t)time(NULL), 60, NULL, &err), EDRLINK_UNKNOWN_KEY);
  expect_err(&err, EDRLINK_UNKNOWN_KEY, __LINE__);
  char *expired_info = NULL;
  CHECK_RC(edrlink_token_inspect(tok, exp + 10, &expired_info, &err), EDRLINK_OK);
  mj *ev = mj_parse(expired_info);
  CHECK(STREQ(mj_str(ev, "status"), "expired") && mj_int(ev, "seconds_left", 0) == -10, "inspect at exp+10: %s", expired_info);
  mj_free(ev);
  edrlink_string_free(expired_info);
  /* tamper: flip one character of the signature */
  char *bad = strdup(tok);
  size_t n = strlen(bad);
  bad[n - 3] = bad[n - 3] == 'A' ? 'B' : 'A';
  CHECK_RC(edrlink_token_verify(bad, keyset, (int64_t)time(NULL), 60, NULL, &err), EDRLINK_BAD_SIGNATURE);
  expect_err(&err, EDRLINK_BAD_SIGNATURE, __LINE__);
  /* a tampered token is refused by the service too */
  c = new_client(NULL, NULL);
  CHECK_RC(edrlink_client_enroll(c, bad, NULL, &err), EDRLINK_BAD_SIGNATURE);
  expect_err(&err, EDRLINK_BAD_SIGNATURE, __LINE__);
  edrlink_client_free(c);
  free(bad);
  mj_free(iv);
  edrlink_string_free(info);
  http_reply_free(&r);
  free(tok);
}

static void test_refusals(void) {
  SECTION("client: refused tokens, blocked flow, wrong epoch");
  char tenant[64];
  snprintf(tenant, sizeof tenant, "c%d-refusals", (int)getpid());
  setup_tenant(tenant);
  edrlink_error *err = NULL;
  edrlink_health h;

  /* revoked token */
  char *jti = NULL;
  char *tok = new_token(tenant, 0, &jti);
  char path[256];
  int st;
  snprintf(path, sizeof path, "/admin/tokens/%s", jti);
  mj_free(admin("DELETE", path, NULL, &st, NULL));
  CHECK(st == 200 || st == 204, "revoke -> %d", st);
  edrlink_client *c = new_client(NULL, NULL);
  CHECK_RC(edrlink_client_enroll(c, tok, &h, &err), EDRLINK_TOKEN_REVOKED);
  expect_err(&err, EDRLINK_TOKEN_REVOKED, __LINE__);
  edrlink_client_free(c);
  free(tok); free(jti);

  /* expired token (1 s lifetime; the service allows no skew) */
  tok = new_token(tenant, 1, NULL);
  sleep(2);
  c = new_client(NULL, NULL);
  CHECK_RC(edrlink_client_enroll(c, tok, &h, &err), EDRLINK_TOKEN_EXPIRED);
  expect_err(&err, EDRLINK_TOKEN_EXPIRED, __LINE__);
  edrlink_client_free(c);
  free(tok);

  /* blocked flow: enrolled, then the admin turns the integration off */
  char *old_tok = new_token(tenant, 0, NULL);
  c = new_client(NULL, NULL);
  CHECK_RC(enroll(c, old_tok, &h), EDRLINK_OK);
  set_integration(tenant, 0);
  CHECK_RC(edrlink_client_submit_json(c, GENERIC, &err), EDRLINK_OK);
  edrlink_flow_state f = 99;
  edrlink_result rc = edrlink_client_handshake(c, &f, &err);
  if (err) { fprintf(stderr, "   handshake while off: %s\n", edrlink_error_message(err)); edrlink_error_free(err); err = NULL; }
  CHECK(rc == EDRLINK_OK && (f == EDRLINK_FLOW_STATE_BLOCKED || f == EDRLINK_FLOW_STATE_REVOKED),
        "handshake while off: %s, flow %u", edrlink_result_name(rc), f);
  edrlink_flush_outcome fo = {77, 77};
  rc = edrlink_client_flush(c, 3, &fo, &err);
  CHECK(rc == EDRLINK_FLOW_BLOCKED || rc == EDRLINK_REVOKED || rc == EDRLINK_EPOCH_MISMATCH, "flush while off: %s",
        edrlink_result_name(rc));
  CHECK(err && edrlink_error_code(err) == rc, "error object matches");
  edrlink_error_free(err); err = NULL;
  CHECK(fo.delivered == 77, "outcome untouched on failure");
  CHECK_RC(edrlink_client_health(c, &h, &err), EDRLINK_OK);
  CHECK(!h.healthy && h.queued_events == 1 && h.last_error == rc, "events kept while blocked (queued %llu, last %s)",
        (unsigned long long)h.queued_events, edrlink_result_name(h.last_error));
  /* enrolling while the integration is off */
  edrlink_client *c2 = new_client(NULL, NULL);
  CHECK_RC(edrlink_client_enroll(c2, old_tok, &h, &err), EDRLINK_INTEGRATION_DISABLED);
  expect_err(&err, EDRLINK_INTEGRATION_DISABLED, __LINE__);
  /* back on: the old token belongs to the previous epoch */
  set_integration(tenant, 1);
  CHECK_RC(edrlink_client_enroll(c2, old_tok, &h, &err), EDRLINK_EPOCH_MISMATCH);
  expect_err(&err, EDRLINK_EPOCH_MISMATCH, __LINE__);
  edrlink_client_free(c2);
  /* a new token re-onboards the first client and its kept event is delivered */
  tok = new_token(tenant, 0, NULL);
  CHECK_RC(enroll(c, tok, &h), EDRLINK_OK);
  CHECK_RC(edrlink_client_flush(c, 20, &fo, &err), EDRLINK_OK);
  CHECK(fo.delivered >= 1 && fo.queued == 0, "kept event delivered after re-enroll (%llu)", (unsigned long long)fo.delivered);
  if (err) { edrlink_error_free(err); err = NULL; }

  /* admin-issued offboarding package */
  snprintf(path, sizeof path, "/admin/tenants/%s/integrations/%s/offboarding-package", tenant, PARTNER);
  mj *pv = admin("POST", path, "{}", &st, NULL);
  CHECK(st == 200 || st == 201, "offboarding package -> %d", st);
  const mj *pkg = mj_get(pv, "package");
  char *pkg_text = pkg ? (pkg->type == MJ_STR ? strdup(pkg->text) : mj_canonical(pkg)) : NULL;
  CHECK_RC(edrlink_client_offboard(c, "{\"garbage\":1}", &err), err ? edrlink_error_code(err) : EDRLINK_OK);
  if (err) { CHECK(edrlink_error_code(err) != EDRLINK_OK, "bad package refused"); edrlink_error_free(err); err = NULL; }
  else CHECK(0, "a garbage offboarding package was accepted");
  CHECK_RC(edrlink_client_offboard(c, pkg_text, &err), EDRLINK_OK);
  if (err) { fprintf(stderr, "   offboard package: %s\n", edrlink_error_message(err)); edrlink_error_free(err); err = NULL; }
  CHECK_RC(edrlink_client_health(c, &h, &err), EDRLINK_OK);
  CHECK(!h.onboarded, "offboarded by package");
  free(pkg_text);
  mj_free(pv);
  edrlink_client_free(c);
  free(tok);
  free(old_tok);
}

static void test_downlevel_client(void) {
  SECTION("client: down-level onboarding package");
  char tenant[64];
  snprintf(tenant, sizeof tenant, "c%d-downlevel", (int)getpid());
  setup_tenant(tenant);
  char path[256], *pkg = NULL;
  int st;
  snprintf(path, sizeof path, "/admin/tenants/%s/integrations/%s/onboarding-package", tenant, PARTNER);
  mj_free(admin("POST", path, "{}", &st, &pkg));
  CHECK(st == 200 || st == 201, "onboarding package -> %d", st);
  edrlink_error *err = NULL;
  edrlink_client *c = new_client(NULL, NULL);
  edrlink_health h;
  CHECK_RC(edrlink_client_enroll_package(c, pkg, &h, &err), EDRLINK_OK);
  if (err) { fprintf(stderr, "   %s\n", edrlink_error_message(err)); edrlink_error_free(err); err = NULL; }
  CHECK(h.onboarded, "down-level onboarded");
  edrlink_flow_state f = 99;
  CHECK_RC(edrlink_client_handshake(c, &f, &err), EDRLINK_OK);
  CHECK(f == EDRLINK_FLOW_STATE_OPEN, "down-level flow open");
  CHECK_RC(edrlink_client_submit_json(c, GENERIC, &err), EDRLINK_OK);
  CHECK_RC(edrlink_client_send_test_detection(c, &err), EDRLINK_OK);
  edrlink_flush_outcome fo = {0};
  CHECK_RC(edrlink_client_flush(c, 20, &fo, &err), EDRLINK_OK);
  if (err) { fprintf(stderr, "   %s\n", edrlink_error_message(err)); edrlink_error_free(err); err = NULL; }
  CHECK(fo.delivered >= 2 && fo.queued == 0, "down-level delivered %llu", (unsigned long long)fo.delivered);
  CHECK(stat_events(tenant) == (long long)fo.delivered, "stored %lld", stat_events(tenant));
  CHECK(eicar_alerts(tenant) == 1, "down-level EICAR alert");
  edrlink_client_free(c);
  free(pkg);
}

static void test_host_transport(void) {
  SECTION("client: host transport (socket, and forwarding to the built-in one)");
  char tenant[64];
  snprintf(tenant, sizeof tenant, "c%d-transport", (int)getpid());
  setup_tenant(tenant);
  edrlink_error *err = NULL;
  for (int mode = 0; mode < 2; mode++) {
    counting_transport ct = {0};
    ct.use_builtin = mode;
    edrlink_transport t = {&ct, counting_send, counting_free};
    edrlink_client *c = new_client(&t, NULL);
    char *tok = new_token(tenant, 0, NULL);
    CHECK_RC(enroll(c, tok, NULL), EDRLINK_OK);
    long after_enroll = ct.calls;
    CHECK(after_enroll >= 2, "mode %d: redeem + handshake went through the host transport (%ld)", mode, after_enroll);
    for (int i = 0; i < 5; i++) CHECK_RC(edrlink_client_submit_json(c, GENERIC, &err), EDRLINK_OK);
    edrlink_flush_outcome fo = {0};
    CHECK_RC(edrlink_client_flush(c, 20, &fo, &err), EDRLINK_OK);
    CHECK(fo.delivered >= 5 && fo.queued == 0 && ct.calls > after_enroll && ct.failures == 0, "mode %d: delivered %llu via %ld calls", mode,
          (unsigned long long)fo.delivered, ct.calls);
    CHECK(ct.freed == 0, "userdata alive while the client lives");
    edrlink_client_free(c);
    CHECK(ct.freed == 1, "free_userdata called exactly once by edrlink_client_free");
    free(tok);
  }
  /* a dead network: enroll gives up with EDRLINK_TRANSPORT after op_timeout */
  counting_transport dead = {0};
  dead.fail_all = 1;
  edrlink_transport t = {&dead, counting_send, NULL};
  opts_buf b;
  init_opts(&b);
  b.o.op_timeout_secs = 2;
  edrlink_client *c = NULL;
  CHECK_RC(edrlink_client_new(&b.o, &t, &c, &err), EDRLINK_OK);
  char *tok = new_token(tenant, 0, NULL);
  CHECK_RC(edrlink_client_enroll(c, tok, NULL, &err), EDRLINK_TRANSPORT);
  expect_err(&err, EDRLINK_TRANSPORT, __LINE__);
  CHECK(dead.calls >= 1, "transport was tried (%ld)", dead.calls);
  edrlink_client_free(c);
  free(tok);

  /* response helpers reject NULL / bad input */
  CHECK_RC(edrlink_http_response_set_status(NULL, 200, &err), EDRLINK_NULL_POINTER); expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_http_response_add_header(NULL, "a", "b", &err), EDRLINK_NULL_POINTER); expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_http_response_set_body(NULL, NULL, 0, &err), EDRLINK_NULL_POINTER); expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_builtin_transport_send(NULL, NULL, &err), EDRLINK_NULL_POINTER); expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
}

/* A transport whose callback checks the response helpers' error paths once. */
static int probing_send(void *userdata, const edrlink_http_request *req, edrlink_http_response *resp) {
  int *probed = userdata;
  if (!*probed) {
    *probed = 1;
    edrlink_error *err = NULL;
    CHECK_RC(edrlink_http_response_set_status(resp, 42, &err), EDRLINK_INVALID_ARGUMENT);
    expect_err(&err, EDRLINK_INVALID_ARGUMENT, __LINE__);
    CHECK_RC(edrlink_http_response_add_header(resp, NULL, "v", &err), EDRLINK_NULL_POINTER);
    expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
    CHECK_RC(edrlink_http_response_add_header(resp, "n", BAD_UTF8, &err), EDRLINK_INVALID_UTF8);
    expect_err(&err, EDRLINK_INVALID_UTF8, __LINE__);
    CHECK_RC(edrlink_http_response_set_body(resp, NULL, 4, &err), EDRLINK_NULL_POINTER);
    expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
    edrlink_http_request bad = *req;
    bad.url = NULL;
    CHECK_RC(edrlink_builtin_transport_send(&bad, resp, &err), EDRLINK_NULL_POINTER);
    expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
    /* returning 0 without a status is a transport failure */
    return 0;
  }
  return edrlink_builtin_transport_send(req, resp, NULL) == EDRLINK_OK ? 0 : 1;
}

static void test_probe_transport(void) {
  SECTION("client: response helper errors inside send");
  char tenant[64];
  snprintf(tenant, sizeof tenant, "c%d-transport", (int)getpid());
  int probed = 0;
  edrlink_transport t = {&probed, probing_send, NULL};
  edrlink_client *c = new_client(&t, NULL);
  char *tok = new_token(tenant, 0, NULL);
  CHECK_RC(enroll(c, tok, NULL), EDRLINK_OK); /* the first (status-less) exchange is retried */
  CHECK(probed == 1, "probe ran");
  edrlink_client_free(c);
  free(tok);
}

/* --- threads ------------------------------------------------------------ */

#define THREADS 4
#define PER_THREAD 50

typedef struct { edrlink_client *c; int failures; int flusher; } thread_arg;

static void *worker(void *p) {
  thread_arg *a = p;
  for (int i = 0; i < PER_THREAD; i++) {
    edrlink_error *err = NULL;
    if (edrlink_client_submit_json(a->c, GENERIC, &err) != EDRLINK_OK) a->failures++;
    edrlink_error_free(err);
    edrlink_health h;
    if (edrlink_client_health(a->c, &h, NULL) != EDRLINK_OK || !h.onboarded) a->failures++;
    if (i % 10 == 0) {
      char *js = NULL;
      if (edrlink_client_health_json(a->c, &js, NULL) != EDRLINK_OK) a->failures++;
      edrlink_string_free(js);
    }
    if (a->flusher && i % 10 == 9) {
      if (edrlink_client_flush(a->c, 5, NULL, NULL) != EDRLINK_OK) a->failures++;
    }
  }
  return NULL;
}

static void test_threads(void) {
  SECTION("client: several threads on one client");
  char tenant[64];
  snprintf(tenant, sizeof tenant, "c%d-threads", (int)getpid());
  setup_tenant(tenant);
  char *tok = new_token(tenant, 0, NULL);
  counting_transport ct = {0};
  edrlink_transport t = {&ct, counting_send, counting_free};
  edrlink_client *c = new_client(&t, NULL);
  CHECK_RC(enroll(c, tok, NULL), EDRLINK_OK);
  pthread_t th[THREADS];
  thread_arg args[THREADS];
  for (int i = 0; i < THREADS; i++) {
    args[i] = (thread_arg){c, 0, i < 2};
    pthread_create(&th[i], NULL, worker, &args[i]);
  }
  int failures = 0;
  for (int i = 0; i < THREADS; i++) { pthread_join(th[i], NULL); failures += args[i].failures; }
  CHECK(failures == 0, "%d failed calls across threads", failures);
  edrlink_flush_outcome fo = {0};
  edrlink_error *err = NULL;
  CHECK_RC(edrlink_client_flush(c, 30, &fo, &err), EDRLINK_OK);
  edrlink_health h;
  CHECK_RC(edrlink_client_health(c, &h, &err), EDRLINK_OK);
  /* every submitted event arrived (plus the client's own heartbeats), and stored == sent */
  CHECK(h.sent_events >= THREADS * PER_THREAD && h.queued_events == 0 && h.dropped_events == 0, "sent %llu",
        (unsigned long long)h.sent_events);
  CHECK(stat_events(tenant) == (long long)h.sent_events, "stored == sent (%lld)", stat_events(tenant));
  edrlink_client_free(c);
  CHECK(ct.freed == 1, "userdata freed once");
  free(tok);
}

int canon_eq_pub(const char *json, const mj *v) {
  char *a = mj_canonical_text(json), *b = mj_canonical(v);
  int eq = a && b && !strcmp(a, b);
  free(a); free(b);
  return eq;
}

static void test_network_options(void) {
  SECTION("client: built-in transport options (proxy, direct, extra CA)");
  char tenant[64];
  snprintf(tenant, sizeof tenant, "c%d-net", (int)getpid());
  setup_tenant(tenant);
  edrlink_error *err = NULL;
  /* Explicitly direct: a dead proxy setting is ignored. */
  opts_buf b;
  init_opts(&b);
  b.o.proxy = "http://127.0.0.1:1";
  b.o.no_proxy = true;
  edrlink_client *c = NULL;
  CHECK_RC(edrlink_client_new(&b.o, NULL, &c, &err), EDRLINK_OK);
  char *tok = new_token(tenant, 0, NULL);
  edrlink_health h;
  CHECK_RC(enroll(c, tok, &h), EDRLINK_OK);
  CHECK(h.flow == EDRLINK_FLOW_STATE_OPEN, "direct despite a proxy setting");
  edrlink_client_free(c);
  /* A dead proxy: a transport error, nothing consumed (the same token works direct). */
  init_opts(&b);
  b.o.proxy = "http://user:secret@127.0.0.1:1";
  b.o.op_timeout_secs = 2;
  c = NULL;
  CHECK_RC(edrlink_client_new(&b.o, NULL, &c, &err), EDRLINK_OK);
  CHECK_RC(edrlink_client_enroll(c, tok, &h, &err), EDRLINK_TRANSPORT);
  CHECK(err && strstr(edrlink_error_message(err), "secret") == NULL, "proxy password not echoed");
  if (err) { edrlink_error_free(err); err = NULL; }
  edrlink_client_free(c);
  /* A bad extra CA or pinning without a CA is refused at creation. */
  init_opts(&b);
  b.o.extra_ca_pem = "not a certificate";
  c = NULL;
  CHECK_RC(edrlink_client_new(&b.o, NULL, &c, &err), EDRLINK_INVALID_ARGUMENT);
  CHECK(c == NULL, "no client on failure");
  if (err) { edrlink_error_free(err); err = NULL; }
  init_opts(&b);
  b.o.pin_extra_ca = true;
  CHECK_RC(edrlink_client_new(&b.o, NULL, &c, &err), EDRLINK_INVALID_ARGUMENT);
  if (err) { edrlink_error_free(err); err = NULL; }
  free(tok);
}

/* --- options schema ------------------------------------------------------ */

static char *read_file(const char *path) {
  FILE *f = path ? fopen(path, "rb") : NULL;
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  size_t got = fread(buf, 1, (size_t)n, f);
  buf[got] = 0;
  fclose(f);
  return buf;
}

static const char *DEVICE_JSON =
    "{\"device_id\":\"c-opts\",\"hostname\":\"h\",\"os\":\"linux\",\"os_version\":\"6\",\"product\":\"p\",\"product_version\":\"1\"}";

/* Creates a client from {"device":…, <extra>} and returns its effective
 * options (parsed), or NULL with *rc and *err set. */
static mj *options_of(const char *extra, edrlink_result *rc, edrlink_error **err) {
  char json[4096];
  snprintf(json, sizeof json, "{\"device\":%s%s%s}", DEVICE_JSON, extra && *extra ? "," : "", extra ? extra : "");
  edrlink_client *c = NULL;
  *rc = edrlink_client_new_json(json, NULL, &c, err);
  if (*rc != EDRLINK_OK) return NULL;
  char *out = NULL;
  CHECK_RC(edrlink_client_options_json(c, &out, NULL), EDRLINK_OK);
  mj *v = out ? mj_parse(out) : NULL;
  edrlink_string_free(out);
  edrlink_client_free(c);
  return v;
}

/* Expects `extra` to be refused with EDRLINK_INVALID_ARGUMENT naming `name`. */
static void expect_option_refused(const char *extra, const char *name) {
  edrlink_result rc;
  edrlink_error *err = NULL;
  mj *v = options_of(extra, &rc, &err);
  CHECK(rc == EDRLINK_INVALID_ARGUMENT, "%s: got %s", extra, edrlink_result_name(rc));
  CHECK(err && strstr(edrlink_error_detail(err), name), "%s: detail names %s: %s", extra, name,
        err ? edrlink_error_detail(err) : "(no error)");
  mj_free(v);
  edrlink_error_free(err);
}

static int scope_applies(const char *scope) {
  return STREQ(scope, "client") || STREQ(scope, "driver") || STREQ(scope, "native") || STREQ(scope, "transport");
}

static void test_options_schema(void) {
  SECTION("client: every option of tests/options-schema.json");
  char *text = read_file(getenv("EDRLINK_TEST_OPTIONS_SCHEMA"));
  CHECK(text != NULL, "EDRLINK_TEST_OPTIONS_SCHEMA readable");
  mj *schema = text ? mj_parse(text) : NULL;
  free(text);
  const mj *list = mj_get(schema, "options");
  CHECK(list && list->type == MJ_ARR && list->n >= 20, "schema lists the options");
  edrlink_result rc;
  edrlink_error *err = NULL;
  mj *eff = options_of("", &rc, &err);
  CHECK_RC(rc, EDRLINK_OK);
  if (err) { fprintf(stderr, "   %s\n", edrlink_error_detail(err)); edrlink_error_free(err); err = NULL; }
  int checked = 0;
  for (size_t i = 0; list && eff && i < list->n; i++) {
    const mj *o = list->items[i];
    const char *name = mj_str(o, "name"), *type = mj_str(o, "type");
    if (!scope_applies(mj_str(o, "scope"))) continue;
    checked++;
    const mj *got = mj_get(eff, name);
    CHECK(got != NULL, "option %s exists in the C API", name);
    if (!got) continue;
    char extra[512];
    if (STREQ(name, "device")) {
      CHECK(STREQ(mj_str(got, "device_id"), "c-opts"), "device passed through");
      expect_option_refused("\"device\":{\"device_id\":\"\"}", "device");
      continue;
    }
    char *want = mj_canonical(mj_get(o, "default")), *have = mj_canonical(got);
    CHECK(STREQ(want, have), "option %s: default %s, C gives %s", name, want, have);
    free(want);
    free(have);
    if (STREQ(type, "integer")) {
      long long min = mj_int(o, "min", 0), max = mj_int(o, "max", -1);
      /* a value inside the range passes through ... */
      snprintf(extra, sizeof extra, "\"%s\":%lld", name, max);
      mj *v = options_of(extra, &rc, &err);
      CHECK(rc == EDRLINK_OK && mj_int(v, name, -2) == max, "%s=%lld accepted: %s", name, max, edrlink_result_name(rc));
      if (err) { fprintf(stderr, "   %s\n", edrlink_error_detail(err)); edrlink_error_free(err); err = NULL; }
      mj_free(v);
      /* ... and out of range is refused by the core, naming the option */
      snprintf(extra, sizeof extra, "\"%s\":%lld", name, max + 1);
      expect_option_refused(extra, name);
      if (min > 0) {
        snprintf(extra, sizeof extra, "\"%s\":%lld", name, min - 1);
        expect_option_refused(extra, name);
      }
      snprintf(extra, sizeof extra, "\"%s\":\"ten\"", name);
      expect_option_refused(extra, name);
    } else if (STREQ(type, "bool")) {
      snprintf(extra, sizeof extra, "\"%s\":\"yes\"", name);
      expect_option_refused(extra, name);
    } else if (STREQ(type, "enum")) {
      snprintf(extra, sizeof extra, "\"%s\":\"sometimes\"", name);
      expect_option_refused(extra, name);
      snprintf(extra, sizeof extra, "\"%s\":\"drop_oldest\"", name);
      mj *v = options_of(extra, &rc, &err);
      CHECK(rc == EDRLINK_OK && STREQ(mj_str(v, name), "drop_oldest"), "%s=drop_oldest accepted", name);
      if (err) { edrlink_error_free(err); err = NULL; }
      mj_free(v);
    } else if (STREQ(type, "string") || STREQ(type, "path")) {
      snprintf(extra, sizeof extra, "\"%s\":42", name);
      expect_option_refused(extra, name);
    }
  }
  CHECK(checked == 21, "%d options apply to C (all 21)", checked);
  mj_free(eff);
  expect_option_refused("\"no_such_option\":1", "no_such_option");

  /* Values reach the client: service_url, a pinned keyset, a data_dir, a proxy (redacted). */
  int st;
  mj *keys = NULL;
  {
    char url[512];
    snprintf(url, sizeof url, "%s/v1/keys", URL);
    http_reply r;
    if (!http_do("GET", url, NULL, NULL, 0, &r)) {
      st = r.status;
      keys = mj_parse((const char *)r.body);
      http_reply_free(&r);
    } else st = 0;
  }
  CHECK(st == 200 && keys, "GET /v1/keys -> %d", st);
  char *jwks = keys ? mj_canonical(keys) : strdup("{}");
  char dir[600], extra[8192];
  snprintf(dir, sizeof dir, "%s/opts-dir", TMP);
  snprintf(extra, sizeof extra,
           "\"service_url\":\"%s\",\"pinned_keys\":%s,\"data_dir\":\"%s\",\"proxy\":\"http://user:secret@127.0.0.1:3128\","
           "\"max_queue_bytes\":2048,\"request_timeout_secs\":5",
           URL, jwks, dir);
  mj *v = options_of(extra, &rc, &err);
  CHECK_RC(rc, EDRLINK_OK);
  if (err) { fprintf(stderr, "   %s\n", edrlink_error_detail(err)); edrlink_error_free(err); err = NULL; }
  const mj *pinned = v ? mj_get(mj_get(v, "pinned_keys"), "keys") : NULL;
  const mj *served = mj_get(keys, "keys");
  char *pk = pinned && pinned->n > 0 && served && served->n == pinned->n ? strdup(mj_str(pinned->items[0], "kid")) : NULL;
  CHECK(v && STREQ(mj_str(v, "service_url"), URL), "service_url passed through");
  CHECK(pk && served && STREQ(pk, mj_str(served->items[0], "kid")), "pinned_keys passed through: %s", pk ? pk : "(null)");
  CHECK(v && STREQ(mj_str(v, "data_dir"), dir), "data_dir passed through");
  CHECK(v && mj_str(v, "proxy") && !strstr(mj_str(v, "proxy"), "secret"), "proxy credentials redacted: %s",
        v && mj_str(v, "proxy") ? mj_str(v, "proxy") : "(null)");
  CHECK(v && mj_int(v, "max_queue_bytes", 0) == 2048 && mj_int(v, "request_timeout_secs", 0) == 5, "numbers passed through");
  struct stat dst;
  CHECK(stat(dir, &dst) == 0, "data_dir created");
  free(pk);
  free(jwks);
  mj_free(v);
  mj_free(keys);
  /* pinned_keys that is not a keyset is the core's error */
  v = options_of("\"pinned_keys\":{\"keys\":42}", &rc, &err);
  CHECK(rc == EDRLINK_MALFORMED || rc == EDRLINK_INVALID_ARGUMENT, "bad pinned_keys refused: %s", edrlink_result_name(rc));
  if (err) { edrlink_error_free(err); err = NULL; }
  mj_free(v);
  /* not JSON / not an object / NULL / bad UTF-8 */
  edrlink_client *c = (edrlink_client *)0x1;
  CHECK_RC(edrlink_client_new_json("{", NULL, &c, &err), EDRLINK_MALFORMED);
  expect_err(&err, EDRLINK_MALFORMED, __LINE__);
  CHECK_RC(edrlink_client_new_json("[1]", NULL, &c, &err), EDRLINK_INVALID_ARGUMENT);
  expect_err(&err, EDRLINK_INVALID_ARGUMENT, __LINE__);
  CHECK_RC(edrlink_client_new_json(NULL, NULL, &c, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_client_new_json(BAD_UTF8, NULL, &c, &err), EDRLINK_INVALID_UTF8);
  expect_err(&err, EDRLINK_INVALID_UTF8, __LINE__);
  CHECK_RC(edrlink_client_new_json("{}", NULL, NULL, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK(c == (edrlink_client *)0x1, "out_client untouched on failures");
  /* a host transport's userdata is released on failure too */
  counting_transport ct = {0};
  edrlink_transport t = {&ct, counting_send, counting_free};
  CHECK_RC(edrlink_client_new_json("{\"max_queue_events\":0}", &t, &c, &err), EDRLINK_INVALID_ARGUMENT);
  expect_err(&err, EDRLINK_INVALID_ARGUMENT, __LINE__);
  CHECK(ct.freed == 1, "free_userdata once on failure (%d)", ct.freed);
  CHECK_RC(edrlink_client_options_json(NULL, NULL, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);

  /* The struct path fills the same options, with the same defaults. */
  opts_buf b;
  init_opts(&b);
  b.o.op_timeout_secs = 0;
  c = NULL;
  CHECK_RC(edrlink_client_new(&b.o, NULL, &c, &err), EDRLINK_OK);
  char *out = NULL;
  CHECK_RC(edrlink_client_options_json(c, &out, &err), EDRLINK_OK);
  v = out ? mj_parse(out) : NULL;
  CHECK(v && mj_int(v, "op_timeout_secs", 0) == 30 && mj_int(v, "max_queue_events", 0) == 100000 &&
        STREQ(mj_str(v, "when_full"), "refuse_new"), "struct defaults: %s", out ? out : "(null)");
  mj_free(v);
  edrlink_string_free(out);
  edrlink_client_free(c);
  mj_free(schema);
}

/* --- log hook, events, rotate, last error --------------------------------- */

typedef struct {
  pthread_mutex_t mu;
  int logs, by_level[6], bad_level;
  char events[4096];    /* event JSON texts, '\n'-separated */
  int nevents;
  edrlink_client *client; /* set: call back into the client from the callback */
  int reentry_health_ok, reentry_flush_rc;
  char secret[512];     /* must not appear in any message */
  int secret_seen;
} hook_rec;

static void rec_log(void *userdata, uint32_t level, const char *message) {
  hook_rec *h = userdata;
  pthread_mutex_lock(&h->mu);
  h->logs++;
  if (level >= 1 && level <= 5) h->by_level[level]++;
  else h->bad_level++;
  if (h->secret[0] && message && strstr(message, h->secret)) h->secret_seen++;
  pthread_mutex_unlock(&h->mu);
}

static void rec_event(void *userdata, const char *event_json) {
  hook_rec *h = userdata;
  pthread_mutex_lock(&h->mu);
  size_t used = strlen(h->events);
  snprintf(h->events + used, sizeof h->events - used, "%s\n", event_json ? event_json : "(null)");
  h->nevents++;
  edrlink_client *c = h->client;
  pthread_mutex_unlock(&h->mu);
  if (c) {
    /* Calling back into the client from inside a callback must not deadlock:
     * a read works, another long operation on this thread is refused. */
    edrlink_health hh;
    edrlink_error *e = NULL;
    if (edrlink_client_health(c, &hh, &e) == EDRLINK_OK) h->reentry_health_ok++;
    edrlink_error_free(e);
    e = NULL;
    h->reentry_flush_rc = (int)edrlink_client_flush(c, 1, NULL, &e);
    edrlink_error_free(e);
  }
}

static int has_event(hook_rec *h, const char *needle) {
  pthread_mutex_lock(&h->mu);
  int r = strstr(h->events, needle) != NULL;
  pthread_mutex_unlock(&h->mu);
  return r;
}

static void test_hooks(void) {
  SECTION("client: log hook, state-change events, rotate, last error");
  char tenant[64];
  snprintf(tenant, sizeof tenant, "c%d-hooks", (int)getpid());
  setup_tenant(tenant);
  char *tok = new_token(tenant, 0, NULL);
  edrlink_error *err = NULL;
  edrlink_client *c = new_client(NULL, NULL);
  hook_rec h;
  memset(&h, 0, sizeof h);
  pthread_mutex_init(&h.mu, NULL);
  snprintf(h.secret, sizeof h.secret, "%s", tok ? tok : "");

  CHECK_RC(edrlink_client_set_log_callback(NULL, rec_log, &h, EDRLINK_LOG_DEBUG, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_client_set_log_callback(c, rec_log, &h, 0, &err), EDRLINK_INVALID_ARGUMENT);
  expect_err(&err, EDRLINK_INVALID_ARGUMENT, __LINE__);
  CHECK_RC(edrlink_client_set_log_callback(c, rec_log, &h, 6, &err), EDRLINK_INVALID_ARGUMENT);
  expect_err(&err, EDRLINK_INVALID_ARGUMENT, __LINE__);
  CHECK_RC(edrlink_client_set_event_callback(NULL, rec_event, &h, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_client_rotate(NULL, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  /* rotate before enrolling: the core's invalid_state */
  CHECK_RC(edrlink_client_rotate(c, &err), EDRLINK_INVALID_STATE);
  expect_err(&err, EDRLINK_INVALID_STATE, __LINE__);

  CHECK_RC(edrlink_client_set_log_callback(c, rec_log, &h, EDRLINK_LOG_DEBUG, &err), EDRLINK_OK);
  CHECK_RC(edrlink_client_set_event_callback(c, rec_event, &h, &err), EDRLINK_OK);
  edrlink_health hh;
  CHECK_RC(edrlink_client_enroll(c, tok, &hh, &err), EDRLINK_OK);
  if (err) { fprintf(stderr, "   enroll: %s\n", edrlink_error_detail(err)); edrlink_error_free(err); err = NULL; }
  CHECK(h.logs > 0 && h.by_level[EDRLINK_LOG_DEBUG] > 0, "debug records during enroll (%d records)", h.logs);
  CHECK(h.by_level[EDRLINK_LOG_TRACE] == 0, "nothing below the minimum level");
  CHECK(h.bad_level == 0, "levels are 1..5");
  CHECK(has_event(&h, "{\"type\":\"credential_changed\"}"), "credential_changed on enroll: %s", h.events);
  CHECK(has_event(&h, "{\"type\":\"flow_changed\",\"flow\":\"open\"}"), "flow_changed open on enroll: %s", h.events);

  /* delivered */
  CHECK_RC(edrlink_client_submit_json(c, GENERIC, &err), EDRLINK_OK);
  edrlink_flush_outcome fo;
  CHECK_RC(edrlink_client_flush(c, 10, &fo, &err), EDRLINK_OK);
  CHECK(has_event(&h, "\"type\":\"delivered\""), "delivered event: %s", h.events);

  /* rotate: the key changes, events say so */
  CHECK_RC(edrlink_client_rotate(c, &err), EDRLINK_OK);
  if (err) { fprintf(stderr, "   rotate: %s\n", edrlink_error_detail(err)); edrlink_error_free(err); err = NULL; }
  CHECK(has_event(&h, "{\"type\":\"credential_rotated\"}"), "credential_rotated: %s", h.events);
  CHECK_RC(edrlink_client_submit_json(c, GENERIC, &err), EDRLINK_OK);
  CHECK_RC(edrlink_client_flush(c, 10, &fo, &err), EDRLINK_OK);
  CHECK(fo.delivered == 1 && fo.queued == 0, "delivery with the rotated key");

  /* last error: none, then the typed refusal while the integration is off */
  edrlink_error *last = (edrlink_error *)0x1;
  CHECK_RC(edrlink_client_last_error(c, &last, &err), EDRLINK_OK);
  CHECK(last == NULL, "no last error while healthy");
  CHECK_RC(edrlink_client_last_error(c, NULL, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_client_last_error(NULL, &last, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  set_integration(tenant, 0);
  pthread_mutex_lock(&h.mu);
  h.events[0] = 0;
  h.client = c; /* from now on the event callback calls back into the client */
  pthread_mutex_unlock(&h.mu);
  edrlink_flow_state f;
  CHECK_RC(edrlink_client_handshake(c, &f, &err), EDRLINK_OK);
  CHECK(f == EDRLINK_FLOW_STATE_BLOCKED, "blocked");
  CHECK(has_event(&h, "{\"type\":\"flow_changed\",\"flow\":\"blocked\"}"), "flow_changed blocked: %s", h.events);
  CHECK(h.reentry_health_ok > 0, "health from inside the callback");
  CHECK(h.reentry_flush_rc == EDRLINK_INVALID_STATE, "flush from inside the callback refused, not deadlocked: %s",
        edrlink_result_name((uint32_t)h.reentry_flush_rc));
  pthread_mutex_lock(&h.mu);
  h.client = NULL;
  pthread_mutex_unlock(&h.mu);
  CHECK_RC(edrlink_client_submit_json(c, GENERIC, &err), EDRLINK_OK);
  CHECK_RC(edrlink_client_flush(c, 5, &fo, &err), EDRLINK_FLOW_BLOCKED);
  CHECK(err && STREQ(edrlink_error_name(err), "flow_blocked") && edrlink_error_http_status(err) == 403, "typed refusal");
  if (err) { edrlink_error_free(err); err = NULL; }
  CHECK_RC(edrlink_client_last_error(c, &last, &err), EDRLINK_OK);
  CHECK(last && edrlink_error_code(last) == EDRLINK_FLOW_BLOCKED && STREQ(edrlink_error_name(last), "flow_blocked") &&
        edrlink_error_http_status(last) == 403 && strlen(edrlink_error_detail(last)) > 0,
        "last error is the typed refusal: %s", last ? edrlink_error_name(last) : "(none)");
  char *lj = NULL, *hj = NULL;
  if (last) CHECK_RC(edrlink_error_to_json(last, &lj, NULL), EDRLINK_OK);
  CHECK_RC(edrlink_client_health_json(c, &hj, &err), EDRLINK_OK);
  mj *hv = hj ? mj_parse(hj) : NULL;
  char *from_health = hv ? mj_canonical(mj_get(hv, "last_error")) : NULL;
  char *from_err = lj ? mj_canonical_text(lj) : NULL;
  CHECK(from_health && from_err && STREQ(from_health, from_err), "health_json last_error is the same record:\n %s\n %s",
        from_health ? from_health : "-", from_err ? from_err : "-");
  free(from_health); free(from_err); mj_free(hv);
  edrlink_string_free(lj); edrlink_string_free(hj);
  edrlink_error_free(last);
  set_integration(tenant, 1);

  /* removing the hooks stops the calls */
  CHECK_RC(edrlink_client_set_log_callback(c, NULL, NULL, EDRLINK_LOG_TRACE, &err), EDRLINK_OK);
  CHECK_RC(edrlink_client_set_event_callback(c, NULL, NULL, &err), EDRLINK_OK);
  int logs_before = h.logs, events_before = h.nevents;
  CHECK_RC(edrlink_client_handshake(c, &f, &err), EDRLINK_OK);
  if (err) { edrlink_error_free(err); err = NULL; }
  CHECK(h.logs == logs_before && h.nevents == events_before, "no calls after removal");
  CHECK(h.secret_seen == 0, "the token never appears in a log message");
  edrlink_client_free(c);
  pthread_mutex_destroy(&h.mu);
  free(tok);
}

void run_client_tests(const char *url, const char *admin_key, const char *tmpdir) {
  URL = url; ADMIN = admin_key; TMP = tmpdir;
  test_client_args();
  test_enroll_send();
  test_refusals();
  test_downlevel_client();
  test_host_transport();
  test_probe_transport();
  test_threads();
  test_network_options();
  test_options_schema();
  test_hooks();
}
