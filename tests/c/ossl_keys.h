/* Host signers and a host credential store for the C suite (test code only).
 *
 * ossl_keys: an edrlink_host_keys built on OpenSSL's EVP API — ECDSA P-256
 * (standing in for a TPM / PKCS#11 key: the private key lives in an
 * EVP_PKEY the SDK never sees) or Ed25519. It can misbehave on purpose
 * (fail, return garbage or a short signature, sleep), and it exports each
 * private key's raw bytes so a test can prove they never reach the SDK.
 *
 * mem_store: an edrlink_credential_store keeping the credential in a C
 * struct, recording every save. */
#ifndef OSSL_KEYS_H
#define OSSL_KEYS_H
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "edrlink.h"

#define OSSL_MAX_KEYS 8

typedef enum {
  OSSL_P256_DER,  /* ECDSA P-256, DER signatures (what OpenSSL returns) */
  OSSL_P256_RAW,  /* ECDSA P-256, raw r||s signatures (what WebCrypto returns) */
  OSSL_ED25519,
} ossl_alg;

typedef enum {
  OSSL_BEHAVE,     /* sign correctly */
  OSSL_FAIL,       /* return fail_rc from every callback */
  OSSL_GARBAGE,    /* a signature of the right length that does not verify */
  OSSL_SHORT,      /* a signature one byte short */
  OSSL_SLOW,       /* sleep slow_ms, then sign correctly */
} ossl_mode;

typedef struct {
  char handle[64];
  void *pkey;          /* EVP_PKEY * */
  uint8_t priv[32];    /* the private key's raw bytes, exported for the leak scan */
  int deleted;
} ossl_key;

typedef struct {
  pthread_mutex_t mu;
  ossl_alg alg;
  ossl_mode mode;
  int fail_rc;
  unsigned slow_ms;
  int corrupt_public;  /* create_key: flip a bit of the public key it reports */
  ossl_key keys[OSSL_MAX_KEYS];
  int nkeys;
  int creates, signs, deletes, sign_failures, freed;
  int in_call, overlaps;   /* callbacks running now; times one started while another ran */
  char last_deleted[64];
  char last_signed[64];
} ossl_keys;

void ossl_keys_init(ossl_keys *k, ossl_alg alg);
void ossl_keys_cleanup(ossl_keys *k);           /* frees every EVP_PKEY */
void ossl_keys_set_mode(ossl_keys *k, ossl_mode mode);
/* The struct for edrlink_client_new_with_host (free_userdata counts calls only). */
edrlink_host_keys ossl_keys_struct(ossl_keys *k);

/* ---- the in-memory credential store ---- */
typedef struct {
  pthread_mutex_t mu;
  char *json;          /* current credential (NUL-terminated) or NULL */
  size_t len;
  size_t pad;          /* load: report the JSON followed by this many spaces (tests the buffer-too-small path) */
  int fail_load, fail_save;  /* non-zero: return this from load / save */
  int loads, too_small, saves, deletes, freed;
  char *saved_all;     /* every saved JSON, concatenated (for the leak scan) */
  size_t saved_all_len;
} mem_store;

void mem_store_init(mem_store *s);
void mem_store_cleanup(mem_store *s);
edrlink_credential_store mem_store_struct(mem_store *s);
#endif
