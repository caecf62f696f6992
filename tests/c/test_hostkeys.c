/* Host credential store and host signer against the real reference service:
 * OpenSSL EVP keys (ECDSA P-256 in DER and raw form, Ed25519) the SDK never
 * sees, an in-memory credential store, rotation, restart, failing and slow
 * signers, and a scan of everything the SDK handed out for private key bytes. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edrlink.h"
#include "harness.h"
#include "http_socket.h"
#include "minijson.h"
#include "ossl_keys.h"
#include "suite.h"

#define PARTNER "acme-av"
static const char *URL, *ADMIN, *TMP;
static int device_counter;

/* --- admin API ---------------------------------------------------------- */

static mj *admin(const char *method, const char *path, const char *json, int *status) {
  char url[512], hdrs[512];
  snprintf(url, sizeof url, "%s%s", URL, path);
  snprintf(hdrs, sizeof hdrs, "authorization: Bearer %s\r\ncontent-type: application/json\r\n", ADMIN);
  http_reply r;
  if (http_do(method, url, hdrs, (const uint8_t *)(json ? json : ""), json ? strlen(json) : 0, &r)) {
    *status = 0;
    return NULL;
  }
  *status = r.status;
  mj *v = mj_parse((const char *)r.body);
  http_reply_free(&r);
  return v;
}

static void setup_tenant(const char *tenant) {
  char body[256], path[256];
  int st;
  snprintf(body, sizeof body, "{\"tenant_id\":\"%s\",\"region\":\"eu\"}", tenant);
  mj_free(admin("POST", "/admin/tenants", body, &st));
  CHECK(st == 200 || st == 201, "create tenant %s -> %d", tenant, st);
  snprintf(path, sizeof path, "/admin/tenants/%s/integrations/%s", tenant, PARTNER);
  mj_free(admin("PUT", path, "{\"enabled\":true}", &st));
  CHECK(st == 200, "enable integration -> %d", st);
}

static char *new_token(const char *tenant) {
  char path[256];
  int st;
  snprintf(path, sizeof path, "/admin/tenants/%s/integrations/%s/tokens", tenant, PARTNER);
  mj *v = admin("POST", path, "{}", &st);
  CHECK(st == 200 || st == 201, "new token -> %d", st);
  char *tok = mj_str(v, "token") ? strdup(mj_str(v, "token")) : NULL;
  mj_free(v);
  return tok;
}

/* Events the service stored for the tenant (the portal's count). */
static long long stored_events(const char *tenant) {
  char path[256];
  int st;
  snprintf(path, sizeof path, "/admin/tenants/%s/stats", tenant);
  mj *v = admin("GET", path, NULL, &st);
  long long n = mj_int(v, "events", -1);
  mj_free(v);
  return n;
}

/* --- capture: everything the SDK hands to the transport, the log and event hooks --- */

typedef struct {
  pthread_mutex_t mu;
  uint8_t *buf;
  size_t len;
  long requests, logs, events;
} capture;

static void cap_add(capture *c, const void *p, size_t n) {
  pthread_mutex_lock(&c->mu);
  c->buf = realloc(c->buf, c->len + n + 1);
  memcpy(c->buf + c->len, p, n);
  c->len += n;
  c->buf[c->len++] = '\n';
  pthread_mutex_unlock(&c->mu);
}

static int cap_send(void *ud, const edrlink_http_request *req, edrlink_http_response *resp) {
  capture *c = ud;
  cap_add(c, req->method, strlen(req->method));
  cap_add(c, req->url, strlen(req->url));
  for (size_t i = 0; i < req->headers_len; i++) {
    cap_add(c, req->headers[i].name, strlen(req->headers[i].name));
    cap_add(c, req->headers[i].value, strlen(req->headers[i].value));
  }
  if (req->body_len) cap_add(c, req->body, req->body_len);
  __atomic_add_fetch(&c->requests, 1, __ATOMIC_SEQ_CST);
  return edrlink_builtin_transport_send(req, resp, NULL) == EDRLINK_OK ? 0 : 1;
}

static void cap_log(void *ud, uint32_t level, const char *message) {
  capture *c = ud;
  (void)level;
  cap_add(c, message, strlen(message));
  __atomic_add_fetch(&c->logs, 1, __ATOMIC_SEQ_CST);
}

static void cap_event(void *ud, const char *json) {
  capture *c = ud;
  cap_add(c, json, strlen(json));
  __atomic_add_fetch(&c->events, 1, __ATOMIC_SEQ_CST);
}

/* --- the leak scan -------------------------------------------------------- */

static int contains(const uint8_t *hay, size_t n, const void *needle, size_t m) {
  return hay && m <= n && memmem(hay, n, needle, m) != NULL;
}

static void b64(const uint8_t *in, size_t n, char *out, int url) {
  const char *a = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                      : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  for (size_t i = 0; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = a[v >> 18 & 63]; out[o++] = a[v >> 12 & 63]; out[o++] = a[v >> 6 & 63]; out[o++] = a[v & 63];
  }
  out[o] = 0;
}

/* Whether the 32 private key bytes appear in `hay`: raw, as hex (either
 * case), or base64 / base64url at any alignment (a 27-byte window starting
 * at offset 0, 1 or 2 is encoded on its own whatever surrounds the key). */
static int leaks(const uint8_t *hay, size_t n, const uint8_t priv[32]) {
  if (contains(hay, n, priv, 32)) return 1;
  char hex[65], HEX[65];
  for (int i = 0; i < 32; i++) {
    snprintf(hex + 2 * i, 3, "%02x", priv[i]);
    snprintf(HEX + 2 * i, 3, "%02X", priv[i]);
  }
  if (contains(hay, n, hex, 64) || contains(hay, n, HEX, 64)) return 1;
  for (int off = 0; off < 3; off++) {
    char e[64];
    for (int url = 0; url < 2; url++) {
      b64(priv + off, 27, e, url);
      if (contains(hay, n, e, strlen(e))) return 1;
    }
  }
  return 0;
}

/* --- helpers --------------------------------------------------------------- */

static char *options_json(const char *extra) {
  char *s = NULL;
  int n = asprintf(&s,
                   "{\"device\":{\"device_id\":\"c-hk-%d-%d\",\"hostname\":\"c-hk-host\",\"os\":\"linux\",\"os_version\":\"6.1\","
                   "\"product\":\"Acme AV for C\",\"product_version\":\"1.2.3\"},\"op_timeout_secs\":10%s%s}",
                   (int)getpid(), ++device_counter, extra && *extra ? "," : "", extra ? extra : "");
  return n < 0 ? NULL : s;
}

static edrlink_client *new_host_client(const char *extra, const edrlink_transport *t, const edrlink_credential_store *s,
                                       const edrlink_host_keys *k) {
  char *json = options_json(extra);
  edrlink_client *c = NULL;
  edrlink_error *err = NULL;
  CHECK_RC(edrlink_client_new_with_host(json, t, s, k, &c, &err), EDRLINK_OK);
  if (err) { fprintf(stderr, "   new_with_host: %s\n", edrlink_error_detail(err)); edrlink_error_free(err); }
  free(json);
  return c;
}

static const char *GENERIC = "{\"type\":\"generic\",\"time\":\"2026-11-23T12:00:00Z\",\"name\":\"process_start\",\"data\":{\"pid\":42}}";

static edrlink_result flush_c(edrlink_client *c, uint32_t secs, edrlink_flush_outcome *fo, char *detail, size_t dcap) {
  edrlink_error *err = NULL;
  edrlink_result rc = edrlink_client_flush(c, secs, fo, &err);
  if (detail) snprintf(detail, dcap, "%s", err ? edrlink_error_detail(err) : "");
  edrlink_error_free(err);
  return rc;
}

static uint64_t queued(edrlink_client *c) {
  edrlink_health h;
  memset(&h, 0, sizeof h);
  CHECK_RC(edrlink_client_health(c, &h, NULL), EDRLINK_OK);
  return h.queued_events;
}

static uint64_t sent(edrlink_client *c) {
  edrlink_health h;
  memset(&h, 0, sizeof h);
  CHECK_RC(edrlink_client_health(c, &h, NULL), EDRLINK_OK);
  return h.sent_events;
}

/* The host_key of a stored credential: checks its shape, returns a malloc'd handle. */
static char *stored_handle(mem_store *st, const char *want_kty) {
  pthread_mutex_lock(&st->mu);
  mj *v = st->json ? mj_parse(st->json) : NULL;
  pthread_mutex_unlock(&st->mu);
  const mj *hk = mj_get(v, "host_key");
  const mj *jwk = mj_get(hk, "jwk");
  CHECK(v && hk && jwk, "stored credential has host_key with a jwk");
  CHECK(v && mj_get(v, "key_seed") == NULL, "stored credential has no key_seed");
  CHECK(STREQ(mj_str(jwk, "kty"), want_kty) && mj_get(jwk, "d") == NULL, "jwk kty %s (want %s), no private part",
        mj_str(jwk, "kty") ? mj_str(jwk, "kty") : "-", want_kty);
  char *h = mj_str(hk, "handle") ? strdup(mj_str(hk, "handle")) : NULL;
  mj_free(v);
  return h;
}

/* --- tests --------------------------------------------------------------- */

static void test_construction(void) {
  SECTION("host store/keys: construction");
  edrlink_error *err = NULL;
  edrlink_client *c = (edrlink_client *)0x1;
  char *json = options_json(NULL);
  ossl_keys k;
  mem_store st;
  ossl_keys_init(&k, OSSL_P256_DER);
  mem_store_init(&st);

  /* NULL callbacks are refused with invalid_argument; every struct handed in is released once */
  edrlink_host_keys ks = ossl_keys_struct(&k);
  edrlink_credential_store ss = mem_store_struct(&st);
  ks.sign = NULL;
  CHECK_RC(edrlink_client_new_with_host(json, NULL, &ss, &ks, &c, &err), EDRLINK_INVALID_ARGUMENT);
  CHECK(err && strstr(edrlink_error_detail(err), "sign"), "detail names the callbacks: %s", err ? edrlink_error_detail(err) : "-");
  expect_err(&err, EDRLINK_INVALID_ARGUMENT, __LINE__);
  CHECK(k.freed == 1 && st.freed == 1, "both userdata released once (keys %d, store %d)", k.freed, st.freed);
  ks = ossl_keys_struct(&k);
  ks.create_key = NULL;
  CHECK_RC(edrlink_client_new_with_host(json, NULL, NULL, &ks, &c, &err), EDRLINK_INVALID_ARGUMENT);
  expect_err(&err, EDRLINK_INVALID_ARGUMENT, __LINE__);
  ks = ossl_keys_struct(&k);
  ks.delete_key = NULL;
  CHECK_RC(edrlink_client_new_with_host(json, NULL, NULL, &ks, &c, &err), EDRLINK_INVALID_ARGUMENT);
  expect_err(&err, EDRLINK_INVALID_ARGUMENT, __LINE__);
  CHECK(k.freed == 3, "keys userdata released on each refusal (%d)", k.freed);
  ss = mem_store_struct(&st);
  ss.load = NULL;
  CHECK_RC(edrlink_client_new_with_host(json, NULL, &ss, NULL, &c, &err), EDRLINK_INVALID_ARGUMENT);
  expect_err(&err, EDRLINK_INVALID_ARGUMENT, __LINE__);
  ss = mem_store_struct(&st);
  ss.save = NULL;
  CHECK_RC(edrlink_client_new_with_host(json, NULL, &ss, NULL, &c, &err), EDRLINK_INVALID_ARGUMENT);
  expect_err(&err, EDRLINK_INVALID_ARGUMENT, __LINE__);
  ss = mem_store_struct(&st);
  ss.delete_credential = NULL;
  ks = ossl_keys_struct(&k);
  counting_transport ct = {0};
  edrlink_transport t = {&ct, counting_send, counting_free};
  CHECK_RC(edrlink_client_new_with_host(json, &t, &ss, &ks, &c, &err), EDRLINK_INVALID_ARGUMENT);
  expect_err(&err, EDRLINK_INVALID_ARGUMENT, __LINE__);
  CHECK(st.freed == 4 && k.freed == 4 && ct.freed == 1, "all three released once (store %d, keys %d, transport %d)", st.freed,
        k.freed, ct.freed);
  /* other failures release them too */
  ss = mem_store_struct(&st);
  ks = ossl_keys_struct(&k);
  CHECK_RC(edrlink_client_new_with_host(json, NULL, &ss, &ks, NULL, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_client_new_with_host(NULL, NULL, NULL, NULL, &c, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  ss = mem_store_struct(&st);
  ks = ossl_keys_struct(&k);
  CHECK_RC(edrlink_client_new_with_host("{\"max_queue_events\":0}", NULL, &ss, &ks, &c, &err), EDRLINK_INVALID_ARGUMENT);
  expect_err(&err, EDRLINK_INVALID_ARGUMENT, __LINE__);
  CHECK(st.freed == 6 && k.freed == 6, "released on option errors (store %d, keys %d)", st.freed, k.freed);
  /* a failing load is EDRLINK_STORAGE with the host's code in the detail */
  st.fail_load = 77;
  ss = mem_store_struct(&st);
  CHECK_RC(edrlink_client_new_with_host(json, NULL, &ss, NULL, &c, &err), EDRLINK_STORAGE);
  CHECK(err && strstr(edrlink_error_detail(err), "77"), "load's code in the detail: %s", err ? edrlink_error_detail(err) : "-");
  expect_err(&err, EDRLINK_STORAGE, __LINE__);
  CHECK(st.freed == 7, "store released when its load failed (%d)", st.freed);
  CHECK(c == (edrlink_client *)0x1, "out_client untouched on failures");
  st.fail_load = 0;
  /* an empty store: the client starts not enrolled; load ran once; freeing releases both once */
  ss = mem_store_struct(&st);
  ks = ossl_keys_struct(&k);
  int loads = st.loads;
  CHECK_RC(edrlink_client_new_with_host(json, NULL, &ss, &ks, &c, &err), EDRLINK_OK);
  CHECK(st.loads == loads + 1, "load called at creation");
  edrlink_health h;
  CHECK_RC(edrlink_client_health(c, &h, &err), EDRLINK_OK);
  CHECK(!h.onboarded, "empty store: not enrolled");
  CHECK(k.creates == 0, "no key made before enrollment");
  edrlink_client_free(c);
  CHECK(st.freed == 8 && k.freed == 7, "edrlink_client_free releases both once (store %d, keys %d)", st.freed, k.freed);
  /* the old constructors still work alongside */
  c = NULL;
  CHECK_RC(edrlink_client_new_json(json, NULL, &c, &err), EDRLINK_OK);
  edrlink_client_free(c);
  free(json);
  ossl_keys_cleanup(&k);
  mem_store_cleanup(&st);
}

/* Enroll, send, rotate, restart from the in-memory store, offboard, with one
 * OpenSSL key type; then scan everything the SDK handed out. */
static void signer_round(ossl_alg alg, const char *label, int with_data_dir) {
  char sec[96];
  snprintf(sec, sizeof sec, "host signer %s: enroll, send, rotate, restart, offboard", label);
  SECTION(sec);
  const char *kty = alg == OSSL_ED25519 ? "OKP" : "EC";
  char tenant[64];
  snprintf(tenant, sizeof tenant, "c%d-hk-%s", (int)getpid(), label);
  setup_tenant(tenant);
  char *tok = new_token(tenant);
  ossl_keys k;
  mem_store st;
  capture cap;
  ossl_keys_init(&k, alg);
  mem_store_init(&st);
  memset(&cap, 0, sizeof cap);
  pthread_mutex_init(&cap.mu, NULL);
  char extra[700] = "";
  char dir[600];
  snprintf(dir, sizeof dir, "%s/hk-%s", TMP, label);
  if (with_data_dir) snprintf(extra, sizeof extra, "\"data_dir\":\"%s\"", dir);

  edrlink_transport t = {&cap, cap_send, NULL};
  edrlink_credential_store ss = mem_store_struct(&st);
  edrlink_host_keys ks = ossl_keys_struct(&k);
  edrlink_client *c = new_host_client(extra, &t, &ss, &ks);
  edrlink_error *err = NULL;
  CHECK_RC(edrlink_client_set_log_callback(c, cap_log, &cap, EDRLINK_LOG_TRACE, &err), EDRLINK_OK);
  CHECK_RC(edrlink_client_set_event_callback(c, cap_event, &cap, &err), EDRLINK_OK);

  edrlink_health h;
  CHECK_RC(edrlink_client_enroll(c, tok, &h, &err), EDRLINK_OK);
  if (err) { fprintf(stderr, "   enroll: %s\n", edrlink_error_detail(err)); edrlink_error_free(err); err = NULL; }
  CHECK(h.onboarded && h.flow == EDRLINK_FLOW_STATE_OPEN, "%s: enrolled, flow open", label);
  CHECK(k.creates == 1 && k.nkeys == 1 && k.signs >= 2, "%s: one key made, redeem and hello signed by the host (creates %d, signs %d)",
        label, k.creates, k.signs);
  CHECK(st.saves >= 1, "%s: credential saved through the host store (%d)", label, st.saves);
  char *h1 = stored_handle(&st, kty);
  CHECK(STREQ(h1, k.keys[0].handle), "%s: stored handle %s is the host's %s", label, h1 ? h1 : "-", k.keys[0].handle);
  if (with_data_dir) {
    char cred[700];
    struct stat sb;
    snprintf(cred, sizeof cred, "%s/credential.json", dir);
    CHECK(stat(cred, &sb) != 0, "%s: no credential.json in data_dir with a host store", label);
  }

  for (int i = 0; i < 10; i++) CHECK_RC(edrlink_client_submit_json(c, GENERIC, &err), EDRLINK_OK);
  CHECK_RC(edrlink_client_send_test_detection(c, &err), EDRLINK_OK);
  int signs_before = k.signs;
  edrlink_flush_outcome fo = {0};
  char detail[512];
  CHECK_RC(flush_c(c, 20, &fo, detail, sizeof detail), EDRLINK_OK);
  CHECK(fo.delivered >= 11 && fo.queued == 0, "%s: signed batch delivered (%llu, queued %llu) %s", label,
        (unsigned long long)fo.delivered, (unsigned long long)fo.queued, detail);
  CHECK(k.signs > signs_before, "%s: the batch was signed by the host", label);

  /* rotation: a new key from the host, the old one deleted once committed */
  CHECK_RC(edrlink_client_rotate(c, &err), EDRLINK_OK);
  if (err) { fprintf(stderr, "   rotate: %s\n", edrlink_error_detail(err)); edrlink_error_free(err); err = NULL; }
  CHECK(k.creates == 2 && k.nkeys == 2, "%s: rotation called create_key again (%d)", label, k.creates);
  CHECK(k.deletes == 1 && STREQ(k.last_deleted, k.keys[0].handle), "%s: delete_key for the old key (%d, %s)", label, k.deletes,
        k.last_deleted);
  char *h2 = stored_handle(&st, kty);
  CHECK(STREQ(h2, k.keys[1].handle), "%s: stored handle is the new key %s", label, h2 ? h2 : "-");
  for (int i = 0; i < 5; i++) CHECK_RC(edrlink_client_submit_json(c, GENERIC, &err), EDRLINK_OK);
  CHECK_RC(flush_c(c, 20, &fo, detail, sizeof detail), EDRLINK_OK);
  CHECK(fo.delivered == 5 && fo.queued == 0 && STREQ(k.last_signed, k.keys[1].handle), "%s: delivered with the new key (%llu) %s",
        label, (unsigned long long)fo.delivered, detail);
  uint64_t sent1 = sent(c);
  CHECK(stored_events(tenant) == (long long)sent1, "%s: stored == sent (%lld, %llu)", label, stored_events(tenant),
        (unsigned long long)sent1);
  edrlink_client_free(c);
  CHECK(k.freed == 1 && st.freed == 1, "%s: userdata released at free", label);

  /* restart from the in-memory store (padded past the first load buffer) and keep sending */
  st.pad = EDRLINK_STORE_INITIAL_CAPACITY + 100;
  int too_small = st.too_small;
  ss = mem_store_struct(&st);
  ks = ossl_keys_struct(&k);
  c = new_host_client(extra, &t, &ss, &ks);
  CHECK(st.too_small == too_small + 1, "%s: load asked for a larger buffer once", label);
  CHECK_RC(edrlink_client_set_log_callback(c, cap_log, &cap, EDRLINK_LOG_TRACE, &err), EDRLINK_OK);
  CHECK_RC(edrlink_client_set_event_callback(c, cap_event, &cap, &err), EDRLINK_OK);
  CHECK_RC(edrlink_client_health(c, &h, &err), EDRLINK_OK);
  CHECK(h.onboarded, "%s: restarted enrolled from the host store", label);
  for (int i = 0; i < 3; i++) CHECK_RC(edrlink_client_submit_json(c, GENERIC, &err), EDRLINK_OK);
  CHECK_RC(flush_c(c, 20, &fo, detail, sizeof detail), EDRLINK_OK);
  CHECK(fo.delivered >= 3 && fo.queued == 0, "%s: delivered after restart (%llu) %s", label, (unsigned long long)fo.delivered, detail);
  CHECK(k.creates == 2, "%s: restart made no key", label);
  uint64_t sent2 = sent(c);
  CHECK(stored_events(tenant) == (long long)(sent1 + sent2), "%s: stored == sent across the restart (%lld, %llu)", label,
        stored_events(tenant), (unsigned long long)(sent1 + sent2));

  /* offboarding: the credential leaves the store, the key is deleted */
  CHECK_RC(edrlink_client_offboard(c, NULL, &err), EDRLINK_OK);
  if (err) { fprintf(stderr, "   offboard: %s\n", edrlink_error_detail(err)); edrlink_error_free(err); err = NULL; }
  CHECK(st.json == NULL && st.deletes >= 1, "%s: credential deleted from the host store", label);
  CHECK(k.deletes == 2 && STREQ(k.last_deleted, k.keys[1].handle), "%s: delete_key after offboarding (%d)", label, k.deletes);
  edrlink_client_free(c);

  /* nothing the SDK handed out holds a private key byte */
  CHECK(cap.requests >= 6 && cap.logs > 0 && cap.events > 0, "%s: captured %ld requests, %ld log records, %ld events", label,
        cap.requests, cap.logs, cap.events);
  CHECK(st.saved_all_len > 0, "%s: captured the saved credentials", label);
  for (int i = 0; i < k.nkeys; i++) {
    CHECK(!leaks(cap.buf, cap.len, k.keys[i].priv), "%s: key %d's private bytes never reached the transport or the hooks", label, i);
    CHECK(!leaks((const uint8_t *)st.saved_all, st.saved_all_len, k.keys[i].priv),
          "%s: key %d's private bytes never reached the credential store", label, i);
  }
  /* the scan finds the bytes when they are there */
  uint8_t probe[200];
  memset(probe, 'x', sizeof probe);
  char enc[64];
  b64(k.keys[0].priv + 1, 27, enc, 1);
  memcpy(probe + 17, enc, strlen(enc));
  CHECK(leaks(probe, sizeof probe, k.keys[0].priv), "%s: the scan detects an encoded key", label);

  free(h1);
  free(h2);
  free(tok);
  free(cap.buf);
  pthread_mutex_destroy(&cap.mu);
  ossl_keys_cleanup(&k);
  mem_store_cleanup(&st);
}

/* A host signer that fails, lies or stalls: signer_failed, nothing dropped. */
static void test_failing_signer(void) {
  SECTION("host signer: failure, garbage, short and slow signatures");
  char tenant[64];
  snprintf(tenant, sizeof tenant, "c%d-hk-fail", (int)getpid());
  setup_tenant(tenant);
  char *tok = new_token(tenant);
  ossl_keys k;
  ossl_keys_init(&k, OSSL_P256_DER);
  edrlink_host_keys ks = ossl_keys_struct(&k);
  /* backoff capped at 1 s and no recovery jitter: every flush below asks the signer */
  edrlink_client *c =
      new_host_client("\"signer_timeout_secs\":1,\"max_backoff_secs\":1,\"recovery_jitter_secs\":0", NULL, NULL, &ks);
  edrlink_error *err = NULL;

  /* create_key fails: enrollment is signer_failed with the host's code; the token is untouched */
  ossl_keys_set_mode(&k, OSSL_FAIL);
  CHECK_RC(edrlink_client_enroll(c, tok, NULL, &err), EDRLINK_SIGNER_FAILED);
  CHECK(err && strstr(edrlink_error_detail(err), "4242") && STREQ(edrlink_error_name(err), "signer_failed") &&
            edrlink_error_http_status(err) == 500,
        "create_key failure: %s", err ? edrlink_error_detail(err) : "-");
  expect_err(&err, EDRLINK_SIGNER_FAILED, __LINE__);
  /* a public key that does not match the host's signatures: nothing it signs is used */
  ossl_keys_set_mode(&k, OSSL_BEHAVE);
  k.corrupt_public = 1;
  CHECK_RC(edrlink_client_enroll(c, tok, NULL, &err), EDRLINK_SIGNER_FAILED);
  CHECK(err && strstr(edrlink_error_detail(err), "verify"), "mismatched public key: %s", err ? edrlink_error_detail(err) : "-");
  expect_err(&err, EDRLINK_SIGNER_FAILED, __LINE__);
  k.corrupt_public = 0;
  CHECK_RC(edrlink_client_enroll(c, tok, NULL, &err), EDRLINK_OK);
  if (err) { fprintf(stderr, "   enroll: %s\n", edrlink_error_detail(err)); edrlink_error_free(err); err = NULL; }

  /* a first batch (the client's own heartbeat rides on it), so what follows is only ours */
  CHECK_RC(edrlink_client_submit_json(c, GENERIC, &err), EDRLINK_OK);
  CHECK_RC(flush_c(c, 20, NULL, NULL, 0), EDRLINK_OK);
  uint64_t sent0 = sent(c);
  CHECK(sent0 >= 1 && queued(c) == 0, "first batch delivered (%llu)", (unsigned long long)sent0);
  for (int i = 0; i < 5; i++) CHECK_RC(edrlink_client_submit_json(c, GENERIC, &err), EDRLINK_OK);
  uint64_t q0 = queued(c);
  CHECK(q0 == 5, "queued %llu", (unsigned long long)q0);
  struct { ossl_mode mode; const char *name; const char *needle; } cases[] = {
      {OSSL_FAIL, "error", "4242"},
      {OSSL_GARBAGE, "garbage signature", NULL},
      {OSSL_SHORT, "wrong-length signature", NULL},
      {OSSL_SLOW, "slow signer", NULL},
  };
  k.slow_ms = 2500;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ossl_keys_set_mode(&k, cases[i].mode);
    edrlink_flush_outcome fo = {77, 77};
    char detail[512];
    int signs = k.signs;
    edrlink_result rc = flush_c(c, 5, &fo, detail, sizeof detail);
    CHECK(k.signs > signs, "%s: the signer was asked", cases[i].name);
    CHECK(rc == EDRLINK_SIGNER_FAILED, "%s: flush -> %s (%s)", cases[i].name, edrlink_result_name(rc), detail);
    CHECK(!cases[i].needle || strstr(detail, cases[i].needle), "%s: the host's code in the detail: %s", cases[i].name, detail);
    CHECK(queued(c) == q0, "%s: queue depth unchanged (%llu, was %llu)", cases[i].name, (unsigned long long)queued(c),
          (unsigned long long)q0);
    edrlink_error *last = NULL;
    CHECK_RC(edrlink_client_last_error(c, &last, NULL), EDRLINK_OK);
    CHECK(last && edrlink_error_code(last) == EDRLINK_SIGNER_FAILED, "%s: last error signer_failed", cases[i].name);
    edrlink_error_free(last);
  }
  CHECK(stored_events(tenant) == (long long)sent0, "nothing stored while the signer misbehaved (%lld)", stored_events(tenant));
  /* the signer recovers: everything is delivered, stored == sent */
  ossl_keys_set_mode(&k, OSSL_BEHAVE);
  edrlink_flush_outcome fo = {0};
  char detail[512];
  CHECK_RC(flush_c(c, 30, &fo, detail, sizeof detail), EDRLINK_OK);
  CHECK(fo.queued == 0 && fo.delivered == q0, "recovered: delivered %llu of %llu %s", (unsigned long long)fo.delivered,
        (unsigned long long)q0, detail);
  CHECK(stored_events(tenant) == (long long)sent(c) && sent(c) == sent0 + q0, "stored == sent (%lld, %llu)", stored_events(tenant),
        (unsigned long long)sent(c));
  edrlink_client_free(c);
  ossl_keys_cleanup(&k);
  free(tok);
}

/* The store alone (SDK-made key) and the keys alone (file store). */
static void test_store_and_keys_alone(void) {
  SECTION("host store with the SDK's key; host keys with the file store");
  char tenant[64];
  snprintf(tenant, sizeof tenant, "c%d-hk-alone", (int)getpid());
  setup_tenant(tenant);
  edrlink_error *err = NULL;
  mem_store st;
  mem_store_init(&st);
  edrlink_credential_store ss = mem_store_struct(&st);
  edrlink_client *c = new_host_client(NULL, NULL, &ss, NULL);
  char *tok = new_token(tenant);
  CHECK_RC(edrlink_client_enroll(c, tok, NULL, &err), EDRLINK_OK);
  if (err) { fprintf(stderr, "   enroll: %s\n", edrlink_error_detail(err)); edrlink_error_free(err); err = NULL; }
  mj *v = st.json ? mj_parse(st.json) : NULL;
  CHECK(v && mj_get(v, "key_seed") && !mj_get(v, "host_key"), "without host keys the store receives the SDK's key_seed");
  mj_free(v);
  /* a failing save is EDRLINK_STORAGE with the host's code */
  st.fail_save = 55;
  CHECK_RC(edrlink_client_rotate(c, &err), EDRLINK_STORAGE);
  CHECK(err && strstr(edrlink_error_detail(err), "55"), "save's code in the detail: %s", err ? edrlink_error_detail(err) : "-");
  expect_err(&err, EDRLINK_STORAGE, __LINE__);
  st.fail_save = 0;
  edrlink_client_free(c);
  mem_store_cleanup(&st);

  /* host keys with the default file store: credential.json holds host_key */
  ossl_keys k;
  ossl_keys_init(&k, OSSL_ED25519);
  edrlink_host_keys ks = ossl_keys_struct(&k);
  char dir[600], extra[700], cred[700];
  snprintf(dir, sizeof dir, "%s/hk-file", TMP);
  snprintf(extra, sizeof extra, "\"data_dir\":\"%s\"", dir);
  snprintf(cred, sizeof cred, "%s/credential.json", dir);
  c = new_host_client(extra, NULL, NULL, &ks);
  free(tok);
  tok = new_token(tenant);
  CHECK_RC(edrlink_client_enroll(c, tok, NULL, &err), EDRLINK_OK);
  if (err) { fprintf(stderr, "   enroll: %s\n", edrlink_error_detail(err)); edrlink_error_free(err); err = NULL; }
  edrlink_client_free(c);
  FILE *f = fopen(cred, "r");
  char text[8192] = "";
  size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
  text[n] = 0;
  if (f) fclose(f);
  v = mj_parse(text);
  CHECK(v && mj_get(v, "host_key") && !mj_get(v, "key_seed"), "credential.json holds host_key, no key_seed");
  mj_free(v);
  for (int i = 0; i < k.nkeys; i++) CHECK(!leaks((const uint8_t *)text, n, k.keys[i].priv), "no private byte in credential.json");
  /* that credential cannot be used without the host keys */
  edrlink_client *c2 = (edrlink_client *)0x1;
  char *json = options_json(extra);
  CHECK_RC(edrlink_client_new_json(json, NULL, &c2, &err), EDRLINK_INVALID_STATE);
  expect_err(&err, EDRLINK_INVALID_STATE, __LINE__);
  CHECK_RC(edrlink_client_new_with_host(json, NULL, NULL, NULL, &c2, &err), EDRLINK_INVALID_STATE);
  expect_err(&err, EDRLINK_INVALID_STATE, __LINE__);
  /* with them it can */
  ks = ossl_keys_struct(&k);
  c2 = NULL;
  CHECK_RC(edrlink_client_new_with_host(json, NULL, NULL, &ks, &c2, &err), EDRLINK_OK);
  CHECK_RC(edrlink_client_submit_json(c2, GENERIC, &err), EDRLINK_OK);
  edrlink_flush_outcome fo = {0};
  CHECK_RC(flush_c(c2, 20, &fo, NULL, 0), EDRLINK_OK);
  CHECK(fo.delivered >= 1 && fo.queued == 0, "delivered with the reloaded host key (%llu)", (unsigned long long)fo.delivered);
  CHECK(stored_events(tenant) == (long long)sent(c2), "stored == sent");
  edrlink_client_free(c2);
  free(json);
  free(tok);
  ossl_keys_cleanup(&k);
}

/* Several threads submit and flush on one client with host keys: the SDK
 * calls the signer one call at a time, and every event arrives. */
#define HK_THREADS 4
#define HK_PER_THREAD 20

typedef struct { edrlink_client *c; int failures; } hk_thread;

static void *hk_worker(void *p) {
  hk_thread *a = p;
  for (int i = 0; i < HK_PER_THREAD; i++) {
    if (edrlink_client_submit_json(a->c, GENERIC, NULL) != EDRLINK_OK) a->failures++;
    if (i % 5 == 4 && edrlink_client_flush(a->c, 10, NULL, NULL) != EDRLINK_OK) a->failures++;
  }
  return NULL;
}

static void test_host_keys_threads(void) {
  SECTION("host signer: several threads on one client");
  char tenant[64];
  snprintf(tenant, sizeof tenant, "c%d-hk-threads", (int)getpid());
  setup_tenant(tenant);
  char *tok = new_token(tenant);
  ossl_keys k;
  ossl_keys_init(&k, OSSL_P256_DER);
  edrlink_host_keys ks = ossl_keys_struct(&k);
  edrlink_client *c = new_host_client(NULL, NULL, NULL, &ks);
  edrlink_error *err = NULL;
  CHECK_RC(edrlink_client_enroll(c, tok, NULL, &err), EDRLINK_OK);
  if (err) { fprintf(stderr, "   enroll: %s\n", edrlink_error_detail(err)); edrlink_error_free(err); err = NULL; }
  pthread_t th[HK_THREADS];
  hk_thread args[HK_THREADS];
  for (int i = 0; i < HK_THREADS; i++) {
    args[i] = (hk_thread){c, 0};
    pthread_create(&th[i], NULL, hk_worker, &args[i]);
  }
  int failures = 0;
  for (int i = 0; i < HK_THREADS; i++) { pthread_join(th[i], NULL); failures += args[i].failures; }
  CHECK(failures == 0, "%d failed calls across threads", failures);
  CHECK_RC(flush_c(c, 30, NULL, NULL, 0), EDRLINK_OK);
  CHECK(k.overlaps == 0 && k.signs > 2, "the signer ran one call at a time (%d overlaps in %d signatures)", k.overlaps, k.signs);
  CHECK(sent(c) >= HK_THREADS * HK_PER_THREAD && queued(c) == 0, "all %d events delivered (%llu)", HK_THREADS * HK_PER_THREAD,
        (unsigned long long)sent(c));
  CHECK(stored_events(tenant) == (long long)sent(c), "stored == sent (%lld)", stored_events(tenant));
  edrlink_client_free(c);
  ossl_keys_cleanup(&k);
  free(tok);
}

void run_hostkey_tests(const char *url, const char *admin_key, const char *tmpdir) {
  URL = url; ADMIN = admin_key; TMP = tmpdir;
  test_construction();
  signer_round(OSSL_P256_DER, "p256", 1);
  signer_round(OSSL_P256_RAW, "p256raw", 0);
  signer_round(OSSL_ED25519, "ed25519", 0);
  test_failing_signer();
  test_store_and_keys_alone();
  test_host_keys_threads();
}
