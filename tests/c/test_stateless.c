/* Stateless API: version, result codes, errors, memory, EICAR, keys,
 * envelopes, tokens, down-level signing, and the shared test vectors. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edrlink.h"
#include "harness.h"
#include "minijson.h"
#include "suite.h"

static const uint8_t SEED_A[32] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
                                   9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
static const uint8_t SEED_B[32] = {8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
                                   8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8};
static const char BAD_UTF8[] = {'a', (char)0xff, (char)0xfe, 'b', 0};

/* Checks the error object of a failed call and frees it. */
void expect_err(edrlink_error **err, edrlink_result want, int line) {
  CHECK(*err != NULL, "line %d: no error object", line);
  if (*err) {
    CHECK(edrlink_error_code(*err) == want, "line %d: error code %s, want %s", line,
          edrlink_result_name(edrlink_error_code(*err)), edrlink_result_name(want));
    CHECK(strlen(edrlink_error_message(*err)) > 0, "line %d: empty message", line);
    edrlink_error_free(*err);
    *err = NULL;
  }
}

static void test_version(void) {
  SECTION("version");
  CHECK(STREQ(edrlink_version(), EDRLINK_VERSION), "%s vs %s", edrlink_version(), EDRLINK_VERSION);
  char buf[64];
  snprintf(buf, sizeof buf, "%d.%d.%d", EDRLINK_VERSION_MAJOR, EDRLINK_VERSION_MINOR, EDRLINK_VERSION_PATCH);
  CHECK(STREQ(buf, EDRLINK_VERSION), "macros %s vs %s", buf, EDRLINK_VERSION);
  const char *cargo = getenv("EDRLINK_CARGO_VERSION");
  if (cargo) CHECK(STREQ(cargo, edrlink_version()), "Cargo.toml %s vs %s", cargo, edrlink_version());
  CHECK(edrlink_protocol_version() == 1, "protocol %u", edrlink_protocol_version());
}

static void test_results(void) {
  SECTION("result codes");
  CHECK(EDRLINK_OK == 0, "OK is 0");
  CHECK(STREQ(edrlink_result_name(EDRLINK_OK), "ok"), "ok");
  CHECK(STREQ(edrlink_result_name(EDRLINK_TOKEN_EXPIRED), "token_expired"), "token_expired");
  CHECK(STREQ(edrlink_result_name(EDRLINK_INTERNAL), "internal"), "internal");
  CHECK(STREQ(edrlink_result_name(EDRLINK_NULL_POINTER), "null_pointer"), "null_pointer");
  CHECK(STREQ(edrlink_result_name(EDRLINK_INVALID_UTF8), "invalid_utf8"), "invalid_utf8");
  CHECK(STREQ(edrlink_result_name(EDRLINK_BUFFER_TOO_SMALL), "buffer_too_small"), "buffer_too_small");
  CHECK(STREQ(edrlink_result_name(12345), "unknown"), "unknown");
  CHECK(STREQ(edrlink_result_message(12345), "unknown result code"), "unknown message");
  CHECK(edrlink_result_name(EDRLINK_FLOW_BLOCKED) == edrlink_result_name(EDRLINK_FLOW_BLOCKED), "static storage is stable");
  /* every number 0..999 either has a name or is "unknown"; names are distinct */
  int named = 0;
  for (uint32_t n = 0; n < 1000; n++) {
    const char *nm = edrlink_result_name(n);
    const char *msg = edrlink_result_message(n);
    if (!nm || !msg) { CHECK(0, "NULL name/message for %u", n); continue; }
    if (strcmp(nm, "unknown")) {
      named++;
      CHECK(strlen(msg) > 0 && strcmp(msg, "unknown result code"), "message for %u", n);
    }
  }
  CHECK(named == 41, "%d named codes (37 core + ok + 3 FFI)", named);
  CHECK(STREQ(edrlink_result_name(308), "credential_expired"), "308 is credential_expired");
  CHECK(EDRLINK_CREDENTIAL_EXPIRED == 308, "EDRLINK_CREDENTIAL_EXPIRED");
  CHECK(EDRLINK_SIGNER_FAILED == 704 && STREQ(edrlink_result_name(704), "signer_failed") && edrlink_result_http_status(704) == 500,
        "EDRLINK_SIGNER_FAILED is 704 signer_failed, HTTP 500");

  SECTION("error objects");
  CHECK(edrlink_error_code(NULL) == EDRLINK_NULL_POINTER, "code(NULL)");
  CHECK(STREQ(edrlink_error_message(NULL), ""), "message(NULL)");
  CHECK(edrlink_error_retry_after(NULL) == 0, "retry_after(NULL)");
  edrlink_error_free(NULL);
  edrlink_string_free(NULL);
  edrlink_bytes_free(NULL, 0);
  edrlink_client_free(NULL);
  CHECK(1, "free(NULL) is a no-op for every *_free");

  CHECK(STREQ(edrlink_error_name(NULL), "null_pointer"), "name(NULL)");
  CHECK(STREQ(edrlink_error_detail(NULL), ""), "detail(NULL)");
  CHECK(edrlink_error_http_status(NULL) == 0, "http_status(NULL)");
  CHECK(!edrlink_error_has_retry_after(NULL), "has_retry_after(NULL)");
  CHECK(edrlink_result_http_status(EDRLINK_RATE_LIMITED) == 429, "rate_limited is 429");
  CHECK(edrlink_result_http_status(EDRLINK_FLOW_BLOCKED) == 403, "flow_blocked is 403");
  CHECK(edrlink_result_http_status(EDRLINK_NULL_POINTER) == 400, "C-only codes are 400");
  CHECK(edrlink_result_http_status(EDRLINK_OK) == 200, "ok is 200");
  CHECK(edrlink_result_http_status(12345) == 0, "unknown is 0");

  /* err out-param is optional */
  CHECK_RC(edrlink_token_inspect(NULL, 0, NULL, NULL), EDRLINK_NULL_POINTER);
  edrlink_error *err = NULL;
  char *out = NULL;
  CHECK_RC(edrlink_token_inspect(NULL, 0, &out, &err), EDRLINK_NULL_POINTER);
  CHECK(out == NULL, "out untouched on failure");
  CHECK(edrlink_error_retry_after(err) == 0, "no retry_after");
  CHECK(!edrlink_error_has_retry_after(err), "retry_after absent");
  /* A C-only error carries the same fields as a core one. */
  CHECK(STREQ(edrlink_error_name(err), "null_pointer"), "name %s", edrlink_error_name(err));
  CHECK(edrlink_error_http_status(err) == 400, "http_status %u", (unsigned)edrlink_error_http_status(err));
  CHECK(edrlink_error_detail(err) == edrlink_error_message(err), "detail is the message");
  CHECK(strstr(edrlink_error_detail(err), "token") != NULL, "detail names the argument: %s", edrlink_error_detail(err));
  char *ej = NULL;
  CHECK_RC(edrlink_error_to_json(err, &ej, NULL), EDRLINK_OK);
  mj *ev = ej ? mj_parse(ej) : NULL;
  CHECK(ev && STREQ(mj_str(ev, "code"), "null_pointer") && mj_int(ev, "number", 0) == 900 &&
        mj_int(ev, "http_status", 0) == 400 && mj_get(ev, "retry_after") && mj_get(ev, "retry_after")->type == MJ_NULL &&
        STREQ(mj_str(ev, "detail"), edrlink_error_detail(err)), "error json %s", ej ? ej : "(null)");
  mj_free(ev);
  edrlink_string_free(ej);
  CHECK_RC(edrlink_error_to_json(NULL, &ej, NULL), EDRLINK_NULL_POINTER);
  CHECK_RC(edrlink_error_to_json(err, NULL, NULL), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);

  /* A core error: code, number, status and detail straight from the core. */
  CHECK_RC(edrlink_token_inspect("not-a-token", 0, &out, &err), EDRLINK_MALFORMED);
  CHECK(STREQ(edrlink_error_name(err), "malformed") && edrlink_error_http_status(err) == 400, "malformed fields");
  expect_err(&err, EDRLINK_MALFORMED, __LINE__);

  /* Documented double-free-safe pattern: free, then NULL the pointer; a
   * second free of the NULLed pointer is a no-op. */
  CHECK_RC(edrlink_envelope_seal(SEED_A, 32, "text/plain", (const uint8_t *)"x", 1, &out, &err), EDRLINK_OK);
  edrlink_string_free(out);
  out = NULL;
  edrlink_string_free(out);
  CHECK(out == NULL, "double free of NULLed pointer is harmless");
}

static void test_eicar(void) {
  SECTION("eicar");
  edrlink_error *err = NULL;
  size_t needed = 0;
  CHECK_RC(edrlink_eicar_sha256(NULL, 0, &needed, &err), EDRLINK_BUFFER_TOO_SMALL);
  CHECK(needed == EDRLINK_SHA256_HEX_SIZE, "needed %zu", needed);
  expect_err(&err, EDRLINK_BUFFER_TOO_SMALL, __LINE__);
  char small[10] = "untouched";
  CHECK_RC(edrlink_eicar_sha256(small, sizeof small, NULL, NULL), EDRLINK_BUFFER_TOO_SMALL);
  CHECK(STREQ(small, "untouched"), "buffer untouched on failure");
  CHECK_RC(edrlink_eicar_sha256(NULL, 65, NULL, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  char buf[EDRLINK_SHA256_HEX_SIZE];
  CHECK_RC(edrlink_eicar_sha256(buf, sizeof buf, &needed, &err), EDRLINK_OK);
  CHECK(STREQ(buf, "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"), "%s", buf);
}

static void test_keys_envelopes(void) {
  SECTION("keys");
  edrlink_error *err = NULL;
  uint8_t pk_a[32], pk_b[32];
  CHECK_RC(edrlink_public_key_from_seed(SEED_A, 32, pk_a, &err), EDRLINK_OK);
  CHECK_RC(edrlink_public_key_from_seed(SEED_B, 32, pk_b, &err), EDRLINK_OK);
  CHECK(memcmp(pk_a, pk_b, 32) != 0, "distinct keys");
  CHECK_RC(edrlink_public_key_from_seed(NULL, 32, pk_a, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  /* seed length: invalid_argument (as the shared scenarios); key length: the core's malformed */
  CHECK_RC(edrlink_public_key_from_seed(SEED_A, 31, pk_a, &err), EDRLINK_INVALID_ARGUMENT);
  expect_err(&err, EDRLINK_INVALID_ARGUMENT, __LINE__);
  CHECK_RC(edrlink_public_key_from_seed(SEED_A, 32, NULL, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  char *kid = NULL;
  CHECK_RC(edrlink_key_id(pk_a, 32, &kid, &err), EDRLINK_OK);
  CHECK(kid && strlen(kid) == 22, "kid %s", kid ? kid : "(null)");
  CHECK_RC(edrlink_key_id(pk_a, 33, &kid, &err), EDRLINK_MALFORMED);
  expect_err(&err, EDRLINK_MALFORMED, __LINE__);
  CHECK_RC(edrlink_key_id(NULL, 32, &kid, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_key_id(pk_a, 32, NULL, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);

  SECTION("envelopes");
  const char *msg = "hello world";
  char *env = NULL;
  CHECK_RC(edrlink_envelope_seal(SEED_A, 32, "text/plain", (const uint8_t *)msg, strlen(msg), &env, &err), EDRLINK_OK);
  CHECK(env && strstr(env, kid) != NULL, "envelope names the kid");
  uint8_t *payload = (uint8_t *)0x1;
  size_t plen = 77;
  CHECK_RC(edrlink_envelope_open(env, pk_a, 32, "text/plain", &payload, &plen, &err), EDRLINK_OK);
  CHECK(plen == strlen(msg) && memcmp(payload, msg, plen) == 0, "payload round trip");
  edrlink_bytes_free(payload, plen);
  char *ptype = NULL;
  CHECK_RC(edrlink_envelope_verify(env, pk_a, 32, &ptype, &err), EDRLINK_OK);
  CHECK(STREQ(ptype, "text/plain"), "verify returns the type");
  edrlink_string_free(ptype);
  CHECK_RC(edrlink_envelope_verify(env, pk_a, 32, NULL, &err), EDRLINK_OK);

  /* failures leave out-params untouched */
  payload = (uint8_t *)0x1; plen = 77;
  CHECK_RC(edrlink_envelope_open(env, pk_a, 32, "text/other", &payload, &plen, &err), EDRLINK_WRONG_TYPE);
  CHECK(payload == (uint8_t *)0x1 && plen == 77, "out-params untouched");
  expect_err(&err, EDRLINK_WRONG_TYPE, __LINE__);
  CHECK_RC(edrlink_envelope_open(env, pk_b, 32, "text/plain", &payload, &plen, &err), EDRLINK_UNKNOWN_KEY);
  expect_err(&err, EDRLINK_UNKNOWN_KEY, __LINE__);
  CHECK_RC(edrlink_envelope_verify(env, pk_b, 32, NULL, &err), EDRLINK_UNKNOWN_KEY);
  expect_err(&err, EDRLINK_UNKNOWN_KEY, __LINE__);
  /* tamper the payload: "aGVsbG8gd29ybGQ=" -> "aGVsbG8gd29ybGR=" style flip */
  char *tampered = strdup(env);
  char *p = strstr(tampered, "aGVsbG8");
  CHECK(p != NULL, "payload found");
  if (p) p[1] = 'H';
  CHECK_RC(edrlink_envelope_open(tampered, pk_a, 32, "text/plain", &payload, &plen, &err), EDRLINK_BAD_SIGNATURE);
  expect_err(&err, EDRLINK_BAD_SIGNATURE, __LINE__);
  CHECK_RC(edrlink_envelope_verify(tampered, pk_a, 32, NULL, &err), EDRLINK_BAD_SIGNATURE);
  expect_err(&err, EDRLINK_BAD_SIGNATURE, __LINE__);
  free(tampered);
  CHECK_RC(edrlink_envelope_open("{}", pk_a, 32, "text/plain", &payload, &plen, &err), EDRLINK_MALFORMED);
  expect_err(&err, EDRLINK_MALFORMED, __LINE__);
  CHECK_RC(edrlink_envelope_open("not json", pk_a, 32, "text/plain", &payload, &plen, &err), EDRLINK_MALFORMED);
  expect_err(&err, EDRLINK_MALFORMED, __LINE__);
  CHECK_RC(edrlink_envelope_open(BAD_UTF8, pk_a, 32, "text/plain", &payload, &plen, &err), EDRLINK_INVALID_UTF8);
  expect_err(&err, EDRLINK_INVALID_UTF8, __LINE__);
  CHECK_RC(edrlink_envelope_open(env, pk_a, 32, BAD_UTF8, &payload, &plen, &err), EDRLINK_INVALID_UTF8);
  expect_err(&err, EDRLINK_INVALID_UTF8, __LINE__);
  CHECK_RC(edrlink_envelope_open(NULL, pk_a, 32, "text/plain", &payload, &plen, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_envelope_open(env, NULL, 32, "text/plain", &payload, &plen, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_envelope_open(env, pk_a, 16, "text/plain", &payload, &plen, &err), EDRLINK_MALFORMED);
  expect_err(&err, EDRLINK_MALFORMED, __LINE__);
  CHECK_RC(edrlink_envelope_open(env, pk_a, 32, NULL, &payload, &plen, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_envelope_open(env, pk_a, 32, "text/plain", NULL, &plen, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_envelope_open(env, pk_a, 32, "text/plain", &payload, NULL, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_envelope_verify(NULL, pk_a, 32, NULL, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_envelope_verify(BAD_UTF8, pk_a, 32, NULL, &err), EDRLINK_INVALID_UTF8);
  expect_err(&err, EDRLINK_INVALID_UTF8, __LINE__);
  CHECK_RC(edrlink_envelope_verify(env, pk_a, 0, NULL, &err), EDRLINK_MALFORMED);
  expect_err(&err, EDRLINK_MALFORMED, __LINE__);
  edrlink_string_free(env);

  /* seal errors */
  env = NULL;
  CHECK_RC(edrlink_envelope_seal(NULL, 32, "t/p", NULL, 0, &env, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_envelope_seal(SEED_A, 64, "t/p", NULL, 0, &env, &err), EDRLINK_INVALID_ARGUMENT);
  expect_err(&err, EDRLINK_INVALID_ARGUMENT, __LINE__);
  CHECK_RC(edrlink_envelope_seal(SEED_A, 32, NULL, NULL, 0, &env, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_envelope_seal(SEED_A, 32, BAD_UTF8, NULL, 0, &env, &err), EDRLINK_INVALID_UTF8);
  expect_err(&err, EDRLINK_INVALID_UTF8, __LINE__);
  CHECK_RC(edrlink_envelope_seal(SEED_A, 32, "has space", NULL, 0, &env, &err), EDRLINK_MALFORMED);
  expect_err(&err, EDRLINK_MALFORMED, __LINE__);
  CHECK_RC(edrlink_envelope_seal(SEED_A, 32, "t/p", NULL, 5, &env, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_envelope_seal(SEED_A, 32, "t/p", NULL, 0, NULL, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK(env == NULL, "out untouched on failures");
  /* empty payload: (NULL, 0) */
  CHECK_RC(edrlink_envelope_seal(SEED_A, 32, "t/p", NULL, 0, &env, &err), EDRLINK_OK);
  payload = NULL; plen = 99;
  CHECK_RC(edrlink_envelope_open(env, pk_a, 32, "t/p", &payload, &plen, &err), EDRLINK_OK);
  CHECK(plen == 0 && payload != NULL, "empty payload, non-NULL pointer");
  edrlink_bytes_free(payload, plen);
  edrlink_string_free(env);
  edrlink_string_free(kid);
}

static void test_downlevel(void) {
  SECTION("downlevel authorization");
  edrlink_error *err = NULL;
  const uint8_t key[32] = {1, 2, 3};
  char *auth = NULL;
  CHECK_RC(edrlink_downlevel_authorization("ws-1", key, 32, "POST", "/v1/downlevel/ingest", "application/json",
                                           "2026-11-23T12:00:00Z", (const uint8_t *)"{}", 2, &auth, &err), EDRLINK_OK);
  CHECK(auth && !strncmp(auth, "SharedKey ws-1:", 15), "%s", auth ? auth : "(null)");
  edrlink_string_free(auth);
  auth = NULL;
  /* Empty workspace id or key: the C layer adds no rule of its own (the
   * core signs whatever it is given, as in every other binding). */
  CHECK_RC(edrlink_downlevel_authorization("", key, 32, "POST", "/p", "a/b", "d", NULL, 0, &auth, &err), EDRLINK_OK);
  CHECK(auth && !strncmp(auth, "SharedKey :", 11), "%s", auth ? auth : "(null)");
  edrlink_string_free(auth);
  auth = NULL;
  CHECK_RC(edrlink_downlevel_authorization("ws", key, 0, "POST", "/p", "a/b", "d", NULL, 0, &auth, &err), EDRLINK_OK);
  CHECK(auth && !strncmp(auth, "SharedKey ws:", 13), "%s", auth ? auth : "(null)");
  edrlink_string_free(auth);
  auth = NULL;
  CHECK_RC(edrlink_downlevel_authorization("ws", NULL, 32, "POST", "/p", "a/b", "d", NULL, 0, &auth, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_downlevel_authorization(NULL, key, 32, "POST", "/p", "a/b", "d", NULL, 0, &auth, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_downlevel_authorization("ws", key, 32, BAD_UTF8, "/p", "a/b", "d", NULL, 0, &auth, &err), EDRLINK_INVALID_UTF8);
  expect_err(&err, EDRLINK_INVALID_UTF8, __LINE__);
  CHECK_RC(edrlink_downlevel_authorization("ws", key, 32, "POST", NULL, "a/b", "d", NULL, 0, &auth, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_downlevel_authorization("ws", key, 32, "POST", "/p", NULL, "d", NULL, 0, &auth, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_downlevel_authorization("ws", key, 32, "POST", "/p", "a/b", NULL, NULL, 0, &auth, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_downlevel_authorization("ws", key, 32, "POST", "/p", "a/b", "d", NULL, 3, &auth, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_downlevel_authorization("ws", key, 32, "POST", "/p", "a/b", "d", NULL, 0, NULL, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK(auth == NULL, "out untouched on failures");
}

static void test_token_offline(void) {
  SECTION("tokens (offline)");
  edrlink_error *err = NULL;
  char *out = NULL;
  CHECK_RC(edrlink_token_inspect("not-a-token", 0, &out, &err), EDRLINK_MALFORMED);
  expect_err(&err, EDRLINK_MALFORMED, __LINE__);
  CHECK_RC(edrlink_token_inspect(BAD_UTF8, 0, &out, &err), EDRLINK_INVALID_UTF8);
  expect_err(&err, EDRLINK_INVALID_UTF8, __LINE__);
  CHECK_RC(edrlink_token_inspect("a.b.c", 0, NULL, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_token_verify(NULL, "{\"keys\":[]}", 0, 0, &out, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_token_verify("a.b.c", NULL, 0, 0, &out, &err), EDRLINK_NULL_POINTER);
  expect_err(&err, EDRLINK_NULL_POINTER, __LINE__);
  CHECK_RC(edrlink_token_verify("a.b.c", BAD_UTF8, 0, 0, &out, &err), EDRLINK_INVALID_UTF8);
  expect_err(&err, EDRLINK_INVALID_UTF8, __LINE__);
  CHECK_RC(edrlink_token_verify("a.b.c", "not json", 0, 0, &out, &err), EDRLINK_MALFORMED);
  expect_err(&err, EDRLINK_MALFORMED, __LINE__);
  CHECK(out == NULL, "out untouched on failures");
}

/* ------------------------------------------------------------ vectors */

/* One line per case: kind \t name \t key=hex \t key=hex ... (made by run.sh). */
typedef struct { char *kind, *name; size_t n; char **keys, **vals; } vcase;

static char *unhex(const char *h, size_t *len) {
  size_t n = strlen(h) / 2;
  char *out = malloc(n + 1);
  for (size_t i = 0; i < n; i++) { unsigned v; sscanf(h + 2 * i, "%2x", &v); out[i] = (char)v; }
  out[n] = 0;
  if (len) *len = n;
  return out;
}

static const char *vget(const vcase *c, const char *key) {
  for (size_t i = 0; i < c->n; i++) if (!strcmp(c->keys[i], key)) return c->vals[i];
  return NULL;
}

/* A field as bytes (fields ending in _hex are hex text inside; decode twice). */
static uint8_t *vbytes(const vcase *c, const char *key, size_t *len) {
  const char *v = vget(c, key);
  if (!v) { *len = 0; return NULL; }
  char *hex = strdup(v);
  uint8_t *b = (uint8_t *)unhex(hex, len);
  free(hex);
  return b;
}

static void tohex(const uint8_t *b, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", b[i]);
  out[2 * n] = 0;
}

static int canon_eq(const char *a, const char *b) {
  char *ca = mj_canonical_text(a), *cb = mj_canonical_text(b);
  int eq = ca && cb && !strcmp(ca, cb);
  if (!eq) fprintf(stderr, "   json differs:\n   got  %s\n   want %s\n", ca ? ca : a, cb ? cb : b);
  free(ca); free(cb);
  return eq;
}

static void check_error(const vcase *c, edrlink_result rc, edrlink_error **err) {
  const char *want = vget(c, "ex.error");
  CHECK(want && STREQ(edrlink_result_name(rc), want), "%s/%s: got %s, want %s", c->kind, c->name,
        edrlink_result_name(rc), want ? want : "success");
  if (*err) { edrlink_error_free(*err); *err = NULL; }
}

static int error_codes_seen;

static int run_case(const vcase *c) {
  edrlink_error *err = NULL;
  const char *k = c->kind;
  int expect_error = vget(c, "ex.error") != NULL;
  if (!strcmp(k, "key_from_seed")) {
    size_t sl; uint8_t *seed = vbytes(c, "in.seed_hex", &sl);
    uint8_t pk[32]; char hex[65]; char *kid = NULL;
    CHECK_RC(edrlink_public_key_from_seed(seed, sl, pk, &err), EDRLINK_OK);
    tohex(pk, 32, hex);
    CHECK(STREQ(hex, vget(c, "ex.public_key_hex")), "%s: pk %s", c->name, hex);
    CHECK_RC(edrlink_key_id(pk, 32, &kid, &err), EDRLINK_OK);
    CHECK(STREQ(kid, vget(c, "ex.kid")), "%s: kid %s", c->name, kid);
    edrlink_string_free(kid); free(seed);
  } else if (!strcmp(k, "token_inspect")) {
    char *out = NULL;
    edrlink_result rc = edrlink_token_inspect(vget(c, "in.token"), 0, &out, &err);
    if (expect_error) check_error(c, rc, &err);
    else {
      CHECK_RC(rc, EDRLINK_OK);
      mj *v = mj_parse(out);
      CHECK(STREQ(mj_str(v, "kid"), vget(c, "ex.kid")), "%s: kid", c->name);
      char *claims = mj_canonical(mj_get(v, "claims"));
      CHECK(canon_eq(claims, vget(c, "ex.claims")), "%s: claims", c->name);
      free(claims); mj_free(v);
    }
    edrlink_string_free(out);
  } else if (!strcmp(k, "token_verify")) {
    char *out = NULL;
    edrlink_result rc = edrlink_token_verify(vget(c, "in.token"), vget(c, "in.keyset_json"), atoll(vget(c, "in.now")),
                                             atoll(vget(c, "in.skew")), &out, &err);
    if (expect_error) check_error(c, rc, &err);
    else {
      CHECK_RC(rc, EDRLINK_OK);
      CHECK(out && canon_eq(out, vget(c, "ex.claims")), "%s: claims", c->name);
    }
    edrlink_string_free(out);
  } else if (!strcmp(k, "envelope_seal")) {
    size_t sl, pl; uint8_t *seed = vbytes(c, "in.seed_hex", &sl), *pay = vbytes(c, "in.payload_hex", &pl);
    char *env = NULL;
    CHECK_RC(edrlink_envelope_seal(seed, sl, vget(c, "in.payload_type"), pay, pl, &env, &err), EDRLINK_OK);
    CHECK(STREQ(env, vget(c, "ex.envelope")), "%s: envelope\n got  %s\n want %s", c->name, env, vget(c, "ex.envelope"));
    edrlink_string_free(env); free(seed); free(pay);
  } else if (!strcmp(k, "envelope_open")) {
    size_t kl; uint8_t *pk = vbytes(c, "in.public_key_hex", &kl);
    uint8_t *out = NULL; size_t ol = 0;
    edrlink_result rc = edrlink_envelope_open(vget(c, "in.envelope"), pk, kl, vget(c, "in.payload_type"), &out, &ol, &err);
    if (expect_error) check_error(c, rc, &err);
    else {
      CHECK_RC(rc, EDRLINK_OK);
      char *hex = malloc(ol * 2 + 1);
      tohex(out, ol, hex);
      CHECK(STREQ(hex, vget(c, "ex.payload_hex")), "%s: payload", c->name);
      free(hex);
      edrlink_bytes_free(out, ol);
    }
    free(pk);
  } else if (!strcmp(k, "shared_key_sign")) {
    size_t kl, bl; uint8_t *key = vbytes(c, "in.key_hex", &kl), *body = vbytes(c, "in.body_hex", &bl);
    char *auth = NULL;
    CHECK_RC(edrlink_downlevel_authorization(vget(c, "in.workspace_id"), key, kl, vget(c, "in.method"), vget(c, "in.path"),
                                             vget(c, "in.content_type"), vget(c, "in.date"), body, bl, &auth, &err), EDRLINK_OK);
    CHECK(STREQ(auth, vget(c, "ex.authorization")), "%s: %s", c->name, auth);
    edrlink_string_free(auth); free(key); free(body);
  } else if (!strcmp(k, "eicar")) {
    char buf[EDRLINK_SHA256_HEX_SIZE];
    CHECK_RC(edrlink_eicar_sha256(buf, sizeof buf, NULL, &err), EDRLINK_OK);
    CHECK(STREQ(buf, vget(c, "ex.sha256_hex")), "%s", c->name);
  } else if (!strcmp(k, "error_code")) {
    uint32_t n = (uint32_t)atol(vget(c, "ex.number"));
    CHECK(STREQ(edrlink_result_name(n), vget(c, "in.name")), "%s: %u -> %s", c->name, n, edrlink_result_name(n));
    CHECK(edrlink_result_http_status(n) == atoi(vget(c, "ex.http_status")), "%s: http status %u, want %s", c->name,
          (unsigned)edrlink_result_http_status(n), vget(c, "ex.http_status"));
    error_codes_seen++;
  } else {
    return 0; /* skipped kind */
  }
  if (err) { CHECK(0, "%s: stray error %s", c->name, edrlink_error_message(err)); edrlink_error_free(err); }
  return 1;
}

static void test_vectors(const char *path) {
  SECTION("vectors");
  FILE *f = path ? fopen(path, "r") : NULL;
  CHECK(f != NULL, "vectors file %s (set EDRLINK_TEST_VECTORS)", path ? path : "(unset)");
  if (!f) return;
  char *line = NULL;
  size_t cap = 0;
  int ran = 0, skipped = 0;
  while (getline(&line, &cap, f) > 0) {
    line[strcspn(line, "\n")] = 0;
    vcase c = {0};
    char *save = NULL;
    c.kind = strtok_r(line, "\t", &save);
    c.name = strtok_r(NULL, "\t", &save);
    if (!c.kind || !c.name) continue;
    char *tok;
    while ((tok = strtok_r(NULL, "\t", &save))) {
      char *eq = strchr(tok, '=');
      if (!eq) continue;
      *eq = 0;
      c.keys = realloc(c.keys, (c.n + 1) * sizeof *c.keys);
      c.vals = realloc(c.vals, (c.n + 1) * sizeof *c.vals);
      c.keys[c.n] = tok;
      c.vals[c.n] = unhex(eq + 1, NULL);
      c.n++;
    }
    if (run_case(&c)) ran++; else skipped++;
    for (size_t i = 0; i < c.n; i++) free(c.vals[i]);
    free(c.keys); free(c.vals);
  }
  free(line);
  fclose(f);
  fprintf(stderr, "   vectors: %d cases run, %d skipped (kinds without a C API)\n", ran, skipped);
  CHECK(ran >= 100, "ran %d vector cases", ran);
  /* tests/vectors/errors.json lists every core code: each one has the same
   * name, number and HTTP status here, and the C table has no core code the
   * file lacks (41 = ok + the core's codes + 3 C-only ones). */
  CHECK(error_codes_seen + 4 == 41, "errors.json has %d codes, the C table 37", error_codes_seen);
}

void run_stateless_tests(void) {
  test_version();
  test_results();
  test_eicar();
  test_keys_envelopes();
  test_downlevel();
  test_token_offline();
  test_vectors(getenv("EDRLINK_TEST_VECTORS"));
}
