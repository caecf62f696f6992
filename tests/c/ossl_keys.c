/* OpenSSL EVP host signers and an in-memory credential store (see ossl_keys.h). */
#define _GNU_SOURCE
#include "ossl_keys.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {}
}

void ossl_keys_init(ossl_keys *k, ossl_alg alg) {
  memset(k, 0, sizeof *k);
  pthread_mutex_init(&k->mu, NULL);
  k->alg = alg;
  k->fail_rc = 4242;
}

void ossl_keys_cleanup(ossl_keys *k) {
  for (int i = 0; i < k->nkeys; i++) EVP_PKEY_free(k->keys[i].pkey);
  k->nkeys = 0;
  pthread_mutex_destroy(&k->mu);
}

void ossl_keys_set_mode(ossl_keys *k, ossl_mode mode) {
  pthread_mutex_lock(&k->mu);
  k->mode = mode;
  pthread_mutex_unlock(&k->mu);
}

static ossl_key *find(ossl_keys *k, const char *handle, size_t len) {
  for (int i = 0; i < k->nkeys; i++)
    if (strlen(k->keys[i].handle) == len && memcmp(k->keys[i].handle, handle, len) == 0) return &k->keys[i];
  return NULL;
}

/* The private scalar / seed as 32 raw bytes: the bytes that must never reach the SDK. */
static int export_private(EVP_PKEY *pkey, int ec, uint8_t out[32]) {
  if (ec) {
    BIGNUM *d = NULL;
    if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &d) != 1) return -1;
    int ok = BN_bn2binpad(d, out, 32) == 32;
    BN_clear_free(d);
    return ok ? 0 : -1;
  }
  size_t n = 32;
  return EVP_PKEY_get_raw_private_key(pkey, out, &n) == 1 && n == 32 ? 0 : -1;
}

static int cb_create_key(void *ud, char *handle_out, size_t handle_cap, size_t *handle_len, uint8_t *pub_out,
                         size_t pub_cap, size_t *pub_len) {
  ossl_keys *k = ud;
  pthread_mutex_lock(&k->mu);
  int rc = 0;
  k->creates++;
  if (k->mode == OSSL_FAIL) { rc = k->fail_rc; goto out; }
  if (k->nkeys == OSSL_MAX_KEYS) { rc = 1; goto out; }
  int ec = k->alg != OSSL_ED25519;
  EVP_PKEY *pkey = ec ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256") : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  if (!pkey) { rc = 2; goto out; }
  ossl_key *key = &k->keys[k->nkeys];
  memset(key, 0, sizeof *key);
  snprintf(key->handle, sizeof key->handle, "ossl-%s-%d", ec ? "p256" : "ed25519", k->nkeys + 1);
  size_t n = 0;
  if (ec) {
    /* the uncompressed SEC1 point 04||x||y */
    if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub_out, pub_cap, &n) != 1) n = 0;
  } else {
    n = pub_cap;
    if (EVP_PKEY_get_raw_public_key(pkey, pub_out, &n) != 1) n = 0;
  }
  size_t hl = strlen(key->handle);
  if (n == 0 || hl > handle_cap || export_private(pkey, ec, key->priv) != 0) {
    EVP_PKEY_free(pkey);
    rc = 3;
    goto out;
  }
  if (k->corrupt_public) pub_out[n - 1] ^= 1; /* a P-256 point off the curve / another Ed25519 key */
  memcpy(handle_out, key->handle, hl);
  *handle_len = hl;
  *pub_len = n;
  key->pkey = pkey;
  k->nkeys++;
out:
  pthread_mutex_unlock(&k->mu);
  return rc;
}

/* DER ECDSA-Sig-Value -> raw r||s (32 bytes each). */
static int der_to_raw(const uint8_t *der, size_t der_len, uint8_t out[64]) {
  const unsigned char *p = der;
  ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
  if (!s) return -1;
  const BIGNUM *r, *sv;
  ECDSA_SIG_get0(s, &r, &sv);
  int ok = BN_bn2binpad(r, out, 32) == 32 && BN_bn2binpad(sv, out + 32, 32) == 32;
  ECDSA_SIG_free(s);
  return ok ? 0 : -1;
}

static int sign_body(ossl_keys *k, const char *handle, size_t handle_len, const uint8_t *msg, size_t msg_len,
                     uint8_t *sig_out, size_t sig_cap, size_t *sig_len) {
  pthread_mutex_lock(&k->mu);
  ossl_mode mode = k->mode;
  unsigned slow = k->slow_ms;
  int fail_rc = k->fail_rc;
  k->signs++;
  ossl_key *key = find(k, handle, handle_len);
  EVP_PKEY *pkey = key && !key->deleted ? key->pkey : NULL;
  if (key) snprintf(k->last_signed, sizeof k->last_signed, "%s", key->handle);
  int ec = k->alg != OSSL_ED25519, raw = k->alg == OSSL_P256_RAW;
  pthread_mutex_unlock(&k->mu);
  if (handle[handle_len] != 0) return 90; /* the SDK passes a NUL-terminated handle */
  if (mode == OSSL_FAIL) return fail_rc;
  if (!pkey) return 91;
  if (mode == OSSL_SLOW) sleep_ms(slow);
  if (mode == OSSL_GARBAGE) {
    /* right length for the algorithm, random bytes */
    size_t n = ec && !raw ? 70 : 64;
    if (n > sig_cap) return 92;
    RAND_bytes(sig_out, (int)n);
    if (ec && !raw) { sig_out[0] = 0x30; sig_out[1] = 68; } /* looks like DER, does not verify */
    *sig_len = n;
    return 0;
  }
  uint8_t buf[128];
  size_t n = sizeof buf;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok = ctx && EVP_DigestSignInit(ctx, NULL, ec ? EVP_sha256() : NULL, NULL, pkey) == 1 &&
           EVP_DigestSign(ctx, buf, &n, msg, msg_len) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) return 93;
  if (raw) {
    uint8_t rs[64];
    if (der_to_raw(buf, n, rs) != 0) return 94;
    memcpy(buf, rs, 64);
    n = 64;
  }
  if (mode == OSSL_SHORT) n--;
  if (n > sig_cap) return 95;
  memcpy(sig_out, buf, n);
  *sig_len = n;
  return 0;
}

/* Counts overlapping calls: the SDK promises one callback at a time per client. */
static int cb_sign(void *ud, const char *handle, size_t handle_len, const uint8_t *msg, size_t msg_len, uint8_t *sig_out,
                   size_t sig_cap, size_t *sig_len) {
  ossl_keys *k = ud;
  pthread_mutex_lock(&k->mu);
  if (k->in_call++ > 0) k->overlaps++;
  pthread_mutex_unlock(&k->mu);
  int rc = sign_body(k, handle, handle_len, msg, msg_len, sig_out, sig_cap, sig_len);
  pthread_mutex_lock(&k->mu);
  k->in_call--;
  pthread_mutex_unlock(&k->mu);
  return rc;
}

static int cb_delete_key(void *ud, const char *handle, size_t handle_len) {
  ossl_keys *k = ud;
  pthread_mutex_lock(&k->mu);
  k->deletes++;
  ossl_key *key = find(k, handle, handle_len);
  int rc = 0;
  if (key) {
    key->deleted = 1;
    snprintf(k->last_deleted, sizeof k->last_deleted, "%s", key->handle);
  } else {
    rc = 7;
  }
  pthread_mutex_unlock(&k->mu);
  return rc;
}

static void cb_keys_free(void *ud) {
  ossl_keys *k = ud;
  pthread_mutex_lock(&k->mu);
  k->freed++;
  pthread_mutex_unlock(&k->mu);
}

edrlink_host_keys ossl_keys_struct(ossl_keys *k) {
  edrlink_host_keys s = {k, cb_create_key, cb_sign, cb_delete_key, cb_keys_free};
  return s;
}

/* ---- mem_store ---- */

void mem_store_init(mem_store *s) {
  memset(s, 0, sizeof *s);
  pthread_mutex_init(&s->mu, NULL);
}

void mem_store_cleanup(mem_store *s) {
  free(s->json);
  free(s->saved_all);
  s->json = s->saved_all = NULL;
  pthread_mutex_destroy(&s->mu);
}

static int st_load(void *ud, uint8_t *buf, size_t cap, size_t *out_len) {
  mem_store *s = ud;
  pthread_mutex_lock(&s->mu);
  int rc = 0;
  s->loads++;
  if (s->fail_load) { rc = s->fail_load; goto out; }
  if (!s->json) { rc = EDRLINK_STORE_NONE; goto out; }
  size_t need = s->len + s->pad;
  if (need > cap) {
    s->too_small++;
    *out_len = need;
    rc = EDRLINK_BUFFER_TOO_SMALL;
    goto out;
  }
  memcpy(buf, s->json, s->len);
  memset(buf + s->len, ' ', s->pad); /* trailing whitespace: still the same JSON */
  *out_len = need;
out:
  pthread_mutex_unlock(&s->mu);
  return rc;
}

static int st_save(void *ud, const char *json, size_t len) {
  mem_store *s = ud;
  pthread_mutex_lock(&s->mu);
  int rc = 0;
  s->saves++;
  if (json[len] != 0) { rc = 80; goto out; } /* the SDK passes a NUL-terminated copy */
  if (s->fail_save) { rc = s->fail_save; goto out; }
  char *copy = malloc(len + 1);
  memcpy(copy, json, len + 1);
  free(s->json);
  s->json = copy;
  s->len = len;
  s->saved_all = realloc(s->saved_all, s->saved_all_len + len + 1);
  memcpy(s->saved_all + s->saved_all_len, json, len);
  s->saved_all_len += len;
  s->saved_all[s->saved_all_len++] = '\n';
out:
  pthread_mutex_unlock(&s->mu);
  return rc;
}

static int st_delete(void *ud) {
  mem_store *s = ud;
  pthread_mutex_lock(&s->mu);
  s->deletes++;
  free(s->json);
  s->json = NULL;
  s->len = 0;
  pthread_mutex_unlock(&s->mu);
  return 0;
}

static void st_free(void *ud) {
  mem_store *s = ud;
  pthread_mutex_lock(&s->mu);
  s->freed++;
  pthread_mutex_unlock(&s->mu);
}

edrlink_credential_store mem_store_struct(mem_store *s) {
  edrlink_credential_store c = {s, st_load, st_save, st_delete, st_free};
  return c;
}
