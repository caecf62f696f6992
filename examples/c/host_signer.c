/* A partner agent whose device key edrlink never sees: the key is an OpenSSL
 * EVP ECDSA P-256 key (standing in for a TPM or PKCS#11 token), edrlink gets
 * its handle, its public key and its signatures through edrlink_host_keys.
 *
 *   host_signer [TOKEN]
 *   env: EDRLINK_TOKEN (if no argument), EDRLINK_DATA_DIR (default ./edrlink-host-data),
 *        EDRLINK_SERVICE_URL (optional override of the token's service URL)
 *
 * The "platform keystore" here is a directory of PEM files, one per handle,
 * in EDRLINK_DATA_DIR/keys (mode 0600). A real product calls its TPM
 * (Tspi/tpm2-tss), a PKCS#11 module (C_Sign with CKM_ECDSA over the SHA-256
 * digest) or the OS keystore in the same three callbacks.
 *
 * Build: make PREFIX=/usr/local host_signer   (see Makefile; links -lcrypto) */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <edrlink.h>

typedef struct {
  char dir[1024]; /* where the key files live */
} keystore;

static int key_path(const keystore *ks, const char *handle, size_t handle_len, char *out, size_t cap) {
  /* handles are made below from hex digits only: no path tricks */
  for (size_t i = 0; i < handle_len; i++)
    if (!strchr("0123456789abcdef-p", handle[i])) return -1;
  return snprintf(out, cap, "%s/%.*s.pem", ks->dir, (int)handle_len, handle) < (int)cap ? 0 : -1;
}

static EVP_PKEY *load_key(const keystore *ks, const char *handle, size_t handle_len) {
  char path[1200];
  if (key_path(ks, handle, handle_len, path, sizeof path)) return NULL;
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
  fclose(f);
  return k;
}

/* edrlink_host_keys.create_key: a new P-256 key inside the "platform". */
static int create_key(void *ud, char *handle_out, size_t handle_cap, size_t *handle_len, uint8_t *pub_out, size_t pub_cap,
                      size_t *pub_len) {
  keystore *ks = ud;
  unsigned char id[8];
  char handle[32], path[1200];
  if (RAND_bytes(id, sizeof id) != 1) return 1;
  int n = snprintf(handle, sizeof handle, "p256-");
  for (size_t i = 0; i < sizeof id; i++) n += snprintf(handle + n, sizeof handle - (size_t)n, "%02x", id[i]);
  if ((size_t)n > handle_cap || key_path(ks, handle, (size_t)n, path, sizeof path)) return 2;
  EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  if (!k) return 3;
  int rc = 4;
  FILE *f = NULL;
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd >= 0 && (f = fdopen(fd, "w")) && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1 &&
      EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub_out, pub_cap, pub_len) == 1) {
    memcpy(handle_out, handle, (size_t)n);
    *handle_len = (size_t)n;
    rc = 0;
  }
  if (f) fclose(f); else if (fd >= 0) close(fd);
  EVP_PKEY_free(k);
  return rc;
}

/* edrlink_host_keys.sign: ECDSA over SHA-256 of msg; OpenSSL returns DER, which edrlink accepts. */
static int sign(void *ud, const char *handle, size_t handle_len, const uint8_t *msg, size_t msg_len, uint8_t *sig_out,
                size_t sig_cap, size_t *sig_len) {
  EVP_PKEY *k = load_key(ud, handle, handle_len);
  if (!k) return 1;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  size_t n = sig_cap;
  int ok = ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k) == 1 && EVP_DigestSign(ctx, sig_out, &n, msg, msg_len) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(k);
  if (!ok) return 2;
  *sig_len = n;
  return 0;
}

/* edrlink_host_keys.delete_key: after a rotation is committed, and after offboarding. */
static int delete_key(void *ud, const char *handle, size_t handle_len) {
  char path[1200];
  if (key_path(ud, handle, handle_len, path, sizeof path)) return 1;
  return unlink(path) == 0 || errno == ENOENT ? 0 : 2;
}

/* Copies `s` into a JSON string body (quotes, backslashes and control characters escaped). */
static void json_escape(const char *s, char *out, size_t cap) {
  size_t o = 0;
  for (; *s && o + 7 < cap; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') { out[o++] = '\\'; out[o++] = (char)ch; }
    else if (ch < 0x20) o += (size_t)snprintf(out + o, cap - o, "\\u%04x", ch);
    else out[o++] = (char)ch;
  }
  out[o] = 0;
}

static int fail(const char *what, edrlink_result rc, edrlink_error *err) {
  fprintf(stderr, "%s failed: %s (%u): %s\n", what, edrlink_result_name(rc), (unsigned)rc,
          err ? edrlink_error_detail(err) : edrlink_result_message(rc));
  edrlink_error_free(err);
  return 1;
}

int main(int argc, char **argv) {
  const char *token = argc > 1 ? argv[1] : getenv("EDRLINK_TOKEN");
  const char *data_dir = getenv("EDRLINK_DATA_DIR") ? getenv("EDRLINK_DATA_DIR") : "./edrlink-host-data";
  const char *service_url = getenv("EDRLINK_SERVICE_URL");
  keystore ks;
  mkdir(data_dir, 0700);
  snprintf(ks.dir, sizeof ks.dir, "%s/keys", data_dir);
  mkdir(ks.dir, 0700);

  char host[256] = "unknown";
  gethostname(host, sizeof host - 1);
  char hn[1600], dd[6200], url[6200], options[16384];
  json_escape(host, hn, sizeof hn);
  json_escape(data_dir, dd, sizeof dd);
  json_escape(service_url ? service_url : "", url, sizeof url);
  snprintf(options, sizeof options,
           "{\"device\":{\"device_id\":\"%s\",\"hostname\":\"%s\",\"os\":\"linux\",\"os_version\":\"6\","
           "\"product\":\"Example AV\",\"product_version\":\"1.0.0\"},"
           "\"data_dir\":\"%s\",\"signer_timeout_secs\":5%s%s%s}",
           hn, hn, dd, service_url ? ",\"service_url\":\"" : "", url, service_url ? "\"" : "");

  edrlink_host_keys keys = {&ks, create_key, sign, delete_key, NULL};
  edrlink_client *client = NULL;
  edrlink_error *err = NULL;
  /* NULL transport: built-in HTTPS; NULL store: the credential (handle and
   * public key only) goes to data_dir/credential.json. */
  edrlink_result rc = edrlink_client_new_with_host(options, NULL, NULL, &keys, &client, &err);
  if (rc != EDRLINK_OK) return fail("create client", rc, err);

  edrlink_health h;
  edrlink_client_health(client, &h, NULL);
  if (!h.onboarded) {
    if (!token) {
      fprintf(stderr, "not onboarded: pass an access token (argument or EDRLINK_TOKEN)\n");
      edrlink_client_free(client);
      return 2;
    }
    if ((rc = edrlink_client_enroll(client, token, &h, &err)) != EDRLINK_OK) {
      edrlink_client_free(client);
      return fail("enroll", rc, err);
    }
    printf("enrolled with a host-held P-256 key\n");
  }
  char ev[256], now[32];
  time_t t = time(NULL);
  strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
  snprintf(ev, sizeof ev, "{\"type\":\"generic\",\"time\":\"%s\",\"name\":\"host_signer_example\",\"data\":{}}", now);
  if ((rc = edrlink_client_submit_json(client, ev, &err)) != EDRLINK_OK ||
      (rc = edrlink_client_send_test_detection(client, &err)) != EDRLINK_OK) {
    edrlink_client_free(client);
    return fail("submit", rc, err);
  }
  edrlink_flush_outcome out;
  /* a signer failure is EDRLINK_SIGNER_FAILED and keeps the events queued */
  if ((rc = edrlink_client_flush(client, 30, &out, &err)) != EDRLINK_OK) {
    edrlink_client_free(client);
    return fail("flush", rc, err);
  }
  printf("delivered %llu events (signed by the host key), %llu still queued\n", (unsigned long long)out.delivered,
         (unsigned long long)out.queued);
  char *json = NULL;
  if (edrlink_client_health_json(client, &json, NULL) == EDRLINK_OK) {
    printf("health: %s\n", json);
    edrlink_string_free(json);
  }
  edrlink_client_free(client);
  return 0;
}
