/* The shared scenario runner for C: runs every tests/scenarios/ files (*.json)
 * (format: tests/scenarios/README.md) against the reference service that
 * tests/c/run.sh starts with EDRLINK_TEST_FAULTS=1, through the public C API
 * only. Prints one line per failure (file, step index, reason) and
 *   scenarios: N passed, M failed
 * and exits non-zero when M > 0 or N differs from the number of files.
 *
 * Environment: EDRLINK_TEST_URL, EDRLINK_ADMIN_KEY, EDRLINK_TEST_TMP,
 * EDRLINK_SCENARIOS_DIR (default tests/scenarios). Optional argument: run
 * only the files whose name contains it (local debugging). */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "edrlink.h"
#include "http_socket.h"
#include "minijson.h"

static const char *URL, *ADMIN, *TMP;

static int STREQ_(const char *a, const char *b) { return a && b && !strcmp(a, b); }

/* ---------------------------------------------------------------- small helpers */

static char *xasprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) s = NULL;
  va_end(ap);
  return s;
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
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

/* The text of a value as it goes into a string: strings raw, others as JSON. */
static char *value_text(const mj *v) {
  if (v && v->type == MJ_STR) return strdup(v->text);
  return mj_canonical(v);
}

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64url_encode(const uint8_t *b, size_t n) {
  char *out = malloc(n * 4 / 3 + 4), *o = out;
  size_t i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
    *o++ = B64URL[v >> 18]; *o++ = B64URL[(v >> 12) & 63]; *o++ = B64URL[(v >> 6) & 63]; *o++ = B64URL[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)b[i] << 16;
    *o++ = B64URL[v >> 18]; *o++ = B64URL[(v >> 12) & 63];
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8;
    *o++ = B64URL[v >> 18]; *o++ = B64URL[(v >> 12) & 63]; *o++ = B64URL[(v >> 6) & 63];
  }
  *o = 0;
  return out;
}

/* Unpadded base64url only; returns NULL for any other character. */
static uint8_t *b64url_decode(const char *s, size_t *len) {
  size_t n = strlen(s);
  uint8_t *out = malloc(n * 3 / 4 + 3);
  uint32_t acc = 0;
  int bits = 0;
  *len = 0;
  for (size_t i = 0; i < n; i++) {
    const char *p = memchr(B64URL, s[i], 64);
    if (!p || !s[i]) { free(out); return NULL; }
    acc = acc << 6 | (uint32_t)(p - B64URL);
    bits += 6;
    if (bits >= 8) { bits -= 8; out[(*len)++] = (uint8_t)(acc >> bits); }
  }
  return out;
}

/* ---------------------------------------------------------------- per-client hooks */

typedef struct {
  pthread_mutex_t mu;
  mj *events;  /* array of event objects received during the current step */
  mj *logs;    /* array of {"level": n, "message": "..."} (the current step) */
  mj *all_log; /* every message of the scenario (secret checks) */
} hook_log;

typedef struct {
  char name[32];
  edrlink_client *c;
  hook_log hooks;
} scn_client;

#define MAX_CLIENTS 8

static void on_log(void *userdata, uint32_t level, const char *message) {
  hook_log *h = userdata;
  mj *rec = mj_new(MJ_OBJ, NULL);
  mj_set(rec, "level", mj_new_int(level));
  mj_set(rec, "message", mj_new(MJ_STR, message ? message : ""));
  pthread_mutex_lock(&h->mu);
  mj_push(h->all_log, mj_new(MJ_STR, message ? message : ""));
  mj_push(h->logs, rec);
  pthread_mutex_unlock(&h->mu);
}

static void on_event(void *userdata, const char *event_json) {
  hook_log *h = userdata;
  mj *ev = mj_parse(event_json);
  if (!ev) ev = mj_new(MJ_STR, event_json ? event_json : "(null)"); /* fails every match below */
  pthread_mutex_lock(&h->mu);
  mj_push(h->events, ev);
  pthread_mutex_unlock(&h->mu);
}

static void hooks_reset_step(hook_log *h) {
  pthread_mutex_lock(&h->mu);
  mj_free(h->events);
  mj_free(h->logs);
  h->events = mj_new(MJ_ARR, NULL);
  h->logs = mj_new(MJ_ARR, NULL);
  pthread_mutex_unlock(&h->mu);
}

/* ---------------------------------------------------------------- a scenario run */

typedef struct {
  const char *file;
  mj *vars;     /* object: name -> value */
  mj *secrets;  /* array of strings never to appear in logs or error details */
  scn_client clients[MAX_CLIENTS];
  int nclients;
  int serial;
  char *why;    /* the failure reason of the current step (malloc'd) */
} run_ctx;

static void fail(run_ctx *r, const char *fmt, ...) {
  if (r->why) return; /* the first reason wins */
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&r->why, fmt, ap) < 0) r->why = strdup("(failure)");
  va_end(ap);
}

static void add_secret(run_ctx *r, const char *s) {
  if (!s || strlen(s) < 8) return; /* too short to tell apart from ordinary text */
  for (size_t i = 0; i < r->secrets->n; i++)
    if (!strcmp(r->secrets->items[i]->text, s)) return;
  mj_push(r->secrets, mj_new(MJ_STR, s));
}

/* Strings under `token`, `workspace_key` or `package` fields of an admin answer. */
static void collect_secrets(run_ctx *r, const mj *v, int sensitive) {
  if (!v) return;
  if (v->type == MJ_STR && sensitive) add_secret(r, v->text);
  if (v->type == MJ_STR && sensitive) {
    /* a package given as JSON text holds the workspace key inside */
    mj *inner = v->text[0] == '{' ? mj_parse(v->text) : NULL;
    if (inner) { collect_secrets(r, inner, 1); mj_free(inner); }
  }
  for (size_t i = 0; i < v->n; i++) {
    int s = sensitive;
    if (v->type == MJ_OBJ && v->keys &&
        (!strcmp(v->keys[i], "token") || !strcmp(v->keys[i], "workspace_key") || !strcmp(v->keys[i], "package")))
      s = 1;
    collect_secrets(r, v->items[i], s);
  }
}

static int secret_var_name(const char *n) {
  return !strncmp(n, "token", 5) || !strncmp(n, "package", 7) || strstr(n, "key") != NULL;
}

static void check_no_secret(run_ctx *r, const char *where, const char *text) {
  if (!text) return;
  for (size_t i = 0; i < r->secrets->n; i++)
    if (strstr(text, r->secrets->items[i]->text)) {
      fail(r, "a secret appears in %s", where);
      return;
    }
}

/* ${name} substitution over a value (returns a new value). */
static mj *substitute(run_ctx *r, const mj *v) {
  if (!v) return NULL;
  if (v->type == MJ_STR) {
    const char *t = v->text;
    size_t n = strlen(t);
    if (n > 3 && t[0] == '$' && t[1] == '{' && t[n - 1] == '}' && !memchr(t + 2, '}', n - 3)) {
      char *name = strndup(t + 2, n - 3);
      const mj *val = mj_get(r->vars, name);
      if (!val) fail(r, "unknown variable ${%s}", name);
      free(name);
      return val ? mj_clone(val) : mj_new(MJ_NULL, NULL);
    }
    /* ${name} inside a longer string: the value's text */
    char *out = strdup(""), *p;
    const char *s = t;
    while ((p = strstr(s, "${"))) {
      const char *end = strchr(p, '}');
      if (!end) break;
      char *name = strndup(p + 2, (size_t)(end - p - 2));
      const mj *val = mj_get(r->vars, name);
      if (!val) fail(r, "unknown variable ${%s}", name);
      char *vt = val ? value_text(val) : strdup("");
      char *next = xasprintf("%s%.*s%s", out, (int)(p - s), s, vt);
      free(out); free(vt); free(name);
      out = next;
      s = end + 1;
    }
    char *next = xasprintf("%s%s", out, s);
    free(out);
    mj *res = mj_new(MJ_STR, next);
    free(next);
    return res;
  }
  mj *c = mj_new(v->type, v->text);
  for (size_t i = 0; i < v->n; i++) {
    if (v->type == MJ_OBJ) mj_set(c, v->keys[i], substitute(r, v->items[i]));
    else mj_push(c, substitute(r, v->items[i]));
  }
  return c;
}

static scn_client *find_client(run_ctx *r, const char *name) {
  for (int i = 0; i < r->nclients; i++)
    if (!strcmp(r->clients[i].name, name)) return &r->clients[i];
  return NULL;
}

static void free_client(scn_client *sc) {
  edrlink_client_free(sc->c);
  sc->c = NULL;
  pthread_mutex_lock(&sc->hooks.mu);
  mj_free(sc->hooks.events);
  mj_free(sc->hooks.logs);
  mj_free(sc->hooks.all_log);
  sc->hooks.events = sc->hooks.logs = sc->hooks.all_log = NULL;
  pthread_mutex_unlock(&sc->hooks.mu);
  pthread_mutex_destroy(&sc->hooks.mu);
}

/* A step's outcome. */
typedef struct {
  edrlink_result rc;
  edrlink_error *err;
  mj *result;     /* the result (NULL: none) */
  int http_status; /* admin only */
} outcome;

/* Text argument that may be given as an object (packages): objects become JSON text. */
static char *text_arg(const mj *v) {
  if (!v || v->type == MJ_NULL) return NULL;
  return value_text(v);
}

static mj *health_of(edrlink_client *c, outcome *o) {
  char *json = NULL;
  edrlink_error *err = NULL;
  if (edrlink_client_health_json(c, &json, &err) != EDRLINK_OK) {
    if (!o->err) { o->rc = edrlink_error_code(err); o->err = err; } else edrlink_error_free(err);
    return NULL;
  }
  mj *v = mj_parse(json);
  edrlink_string_free(json);
  return v;
}

static const char *flow_name(edrlink_flow_state f) {
  switch (f) {
    case EDRLINK_FLOW_STATE_OPEN: return "open";
    case EDRLINK_FLOW_STATE_BLOCKED: return "blocked";
    case EDRLINK_FLOW_STATE_REVOKED: return "revoked";
    default: return "none";
  }
}

static void do_admin(run_ctx *r, const mj *step, outcome *o) {
  const char *method = mj_str(step, "method"), *path = mj_str(step, "path");
  if (!method || !path) { fail(r, "admin step needs method and path"); return; }
  const mj *body = mj_get(step, "body");
  char *btext = body ? mj_canonical(body) : NULL;
  char *url = xasprintf("%s%s", URL, path);
  char *hdrs = xasprintf("authorization: Bearer %s\r\ncontent-type: application/json\r\n", ADMIN);
  http_reply rep;
  if (http_do(method, url, hdrs, (const uint8_t *)btext, btext ? strlen(btext) : 0, &rep)) {
    fail(r, "admin %s %s: no answer", method, path);
  } else {
    o->http_status = rep.status;
    o->result = rep.body_len ? mj_parse((const char *)rep.body) : mj_new(MJ_NULL, NULL);
    if (!o->result) o->result = mj_new(MJ_STR, (const char *)rep.body);
    collect_secrets(r, o->result, 0);
    http_reply_free(&rep);
  }
  free(btext); free(url); free(hdrs);
}

static void do_client_new(run_ctx *r, const mj *step, const char *cname, outcome *o) {
  scn_client *sc = find_client(r, cname);
  if (sc) free_client(sc);
  else if (r->nclients == MAX_CLIENTS) { fail(r, "too many clients"); return; }
  else sc = &r->clients[r->nclients++];
  memset(sc, 0, sizeof *sc);
  snprintf(sc->name, sizeof sc->name, "%s", cname);
  pthread_mutex_init(&sc->hooks.mu, NULL);
  sc->hooks.all_log = mj_new(MJ_ARR, NULL);
  hooks_reset_step(&sc->hooks);

  mj *opts = mj_get(step, "options") ? mj_clone(mj_get(step, "options")) : mj_new(MJ_OBJ, NULL);
  const char *tenant = mj_str(r->vars, "tenant");
  const char *devid = mj_str(step, "device_id");
  char *dflt_id = xasprintf("%s-%s", tenant ? tenant : "scn", cname);
  char *host = xasprintf("host-%s", cname);
  mj *dev = mj_new(MJ_OBJ, NULL);
  mj_set(dev, "device_id", mj_new(MJ_STR, devid ? devid : dflt_id));
  mj_set(dev, "hostname", mj_new(MJ_STR, host));
  mj_set(dev, "os", mj_new(MJ_STR, "linux"));
  mj_set(dev, "os_version", mj_new(MJ_STR, "6.1"));
  mj_set(dev, "product", mj_new(MJ_STR, "scenario"));
  mj_set(dev, "product_version", mj_new(MJ_STR, "1.0"));
  mj_set(opts, "device", dev);
  /* a fresh private data directory */
  char *dir = xasprintf("%s/%s-%d-%s", TMP, tenant ? tenant : "scn", ++r->serial, cname);
  if (!mj_get(opts, "data_dir")) mj_set(opts, "data_dir", mj_new(MJ_STR, dir));
  char *json = mj_canonical(opts);
  edrlink_error *err = NULL;
  o->rc = edrlink_client_new_json(json, NULL, &sc->c, &o->err);
  if (o->rc == EDRLINK_OK) {
    if (edrlink_client_set_log_callback(sc->c, on_log, &sc->hooks, EDRLINK_LOG_DEBUG, &err) != EDRLINK_OK ||
        edrlink_client_set_event_callback(sc->c, on_event, &sc->hooks, &err) != EDRLINK_OK) {
      fail(r, "client %s: installing the hooks: %s", cname, edrlink_error_detail(err));
      edrlink_error_free(err);
    }
  }
  free(json); free(dir); free(dflt_id); free(host);
  mj_free(opts);
}

static void do_client_step(run_ctx *r, const char *kind, const mj *step, scn_client *sc, outcome *o) {
  edrlink_client *c = sc->c;
  edrlink_error **e = &o->err;
  if (!strcmp(kind, "enroll")) {
    char *tok = text_arg(mj_get(step, "token"));
    o->rc = edrlink_client_enroll(c, tok, NULL, e);
    if (o->rc == EDRLINK_OK) o->result = health_of(c, o);
    free(tok);
  } else if (!strcmp(kind, "enroll_package")) {
    char *pkg = text_arg(mj_get(step, "package"));
    o->rc = edrlink_client_enroll_package(c, pkg, NULL, e);
    if (o->rc == EDRLINK_OK) o->result = health_of(c, o);
    free(pkg);
  } else if (!strcmp(kind, "handshake")) {
    edrlink_flow_state f = EDRLINK_FLOW_STATE_NONE;
    o->rc = edrlink_client_handshake(c, &f, e);
    if (o->rc == EDRLINK_OK) {
      o->result = mj_new(MJ_OBJ, NULL);
      mj_set(o->result, "flow", mj_new(MJ_STR, flow_name(f)));
    }
  } else if (!strcmp(kind, "submit")) {
    char *ev = mj_canonical(mj_get(step, "event"));
    o->rc = edrlink_client_submit_json(c, ev, e);
    free(ev);
  } else if (!strcmp(kind, "submit_json")) {
    o->rc = edrlink_client_submit_json(c, mj_str(step, "json"), e);
  } else if (!strcmp(kind, "send_test_detection")) {
    o->rc = edrlink_client_send_test_detection(c, e);
  } else if (!strcmp(kind, "flush")) {
    long long t = mj_int(step, "timeout_secs", 10);
    edrlink_flush_outcome fo = {0};
    o->rc = edrlink_client_flush(c, (uint32_t)t, &fo, e);
    if (o->rc == EDRLINK_OK) {
      o->result = mj_new(MJ_OBJ, NULL);
      mj_set(o->result, "delivered", mj_new_int((long long)fo.delivered));
      mj_set(o->result, "queued", mj_new_int((long long)fo.queued));
    }
  } else if (!strcmp(kind, "offboard")) {
    char *pkg = text_arg(mj_get(step, "package"));
    o->rc = edrlink_client_offboard(c, pkg, e);
    free(pkg);
  } else if (!strcmp(kind, "rotate")) {
    o->rc = edrlink_client_rotate(c, e);
  } else if (!strcmp(kind, "health")) {
    o->rc = EDRLINK_OK;
    o->result = health_of(c, o);
    /* the typed accessor agrees with the JSON */
    edrlink_error *last = NULL;
    if (edrlink_client_last_error(c, &last, NULL) == EDRLINK_OK && o->result) {
      const mj *le = mj_get(o->result, "last_error");
      int has = le && le->type == MJ_OBJ;
      if (has != (last != NULL)) fail(r, "edrlink_client_last_error disagrees with the health report");
      else if (last && (!mj_str(le, "code") || strcmp(mj_str(le, "code"), edrlink_error_name(last)) ||
                        mj_int(le, "http_status", 0) != edrlink_error_http_status(last)))
        fail(r, "edrlink_client_last_error: %s/%u vs the report's %s", edrlink_error_name(last),
             (unsigned)edrlink_error_http_status(last), mj_str(le, "code"));
      if (last) check_no_secret(r, "the last error's detail", edrlink_error_detail(last));
    }
    edrlink_error_free(last);
  } else {
    fail(r, "step kind \"%s\" is not implemented by the C runner", kind);
  }
}

static void do_stateless(run_ctx *r, const char *kind, const mj *step, outcome *o) {
  if (!strcmp(kind, "inspect_token")) {
    const mj *now = mj_get(step, "now");
    char *out = NULL;
    char *tok = text_arg(mj_get(step, "token"));
    o->rc = edrlink_token_inspect(tok, now ? strtoll(now->text, NULL, 10) : (long long)time(NULL), &out, &o->err);
    if (o->rc == EDRLINK_OK) o->result = mj_parse(out);
    edrlink_string_free(out);
    free(tok);
  } else if (!strcmp(kind, "verify_envelope")) {
    char *env = text_arg(mj_get(step, "envelope"));
    const char *pk64 = mj_str(step, "public_key");
    size_t pkl = 0;
    uint8_t *pk = pk64 ? b64url_decode(pk64, &pkl) : NULL;
    if (pk64 && !pk) { fail(r, "public_key is not base64url"); free(env); return; }
    char *ptype = NULL;
    o->rc = edrlink_envelope_verify(env, pk, pkl, &ptype, &o->err);
    if (o->rc == EDRLINK_OK) {
      o->result = mj_new(MJ_OBJ, NULL);
      mj_set(o->result, "payload_type", mj_new(MJ_STR, ptype));
      /* the envelope's keyid (its signature verified with this key) */
      mj *ej = mj_parse(env);
      mj *kid = ej ? mj_path(ej, "signatures.0.keyid") : NULL;
      mj_set(o->result, "keyid", kid ? kid : mj_new(MJ_NULL, NULL));
      mj_free(ej);
    }
    edrlink_string_free(ptype);
    free(pk); free(env);
  } else if (!strcmp(kind, "public_key_from_seed")) {
    const char *s64 = mj_str(step, "seed");
    size_t sl = 0;
    uint8_t *seed = s64 ? b64url_decode(s64, &sl) : NULL;
    if (s64 && !seed) { fail(r, "seed is not base64url"); return; }
    uint8_t pk[32];
    o->rc = edrlink_public_key_from_seed(seed ? seed : (const uint8_t *)"", seed ? sl : 0, pk, &o->err);
    if (o->rc == EDRLINK_OK) {
      char *b = b64url_encode(pk, 32);
      o->result = mj_new(MJ_OBJ, NULL);
      mj_set(o->result, "public_key", mj_new(MJ_STR, b));
      free(b);
    }
    free(seed);
  }
}

/* Does event `ev` match the expectation "type" or "type:qualifier"? */
static int event_matches(const mj *ev, const char *want) {
  const char *colon = strchr(want, ':');
  size_t tl = colon ? (size_t)(colon - want) : strlen(want);
  const char *type = mj_str(ev, "type");
  if (!type || strlen(type) != tl || strncmp(type, want, tl)) return 0;
  if (!colon) return 1;
  const char *q = colon + 1;
  return STREQ_(mj_str(ev, "flow"), q) || STREQ_(mj_str(ev, "code"), q) || STREQ_(mj_str(ev, "reason"), q);
}

static int level_num(const char *name) {
  static const char *names[] = {"", "error", "warn", "info", "debug", "trace"};
  for (int i = 1; i <= 5; i++) if (!strcmp(name, names[i])) return i;
  if (!strcmp(name, "warning")) return 2;
  return 0;
}

static void check_expect(run_ctx *r, const char *kind, const mj *expect, outcome *o, scn_client *sc) {
  const char *want_err = mj_str(expect, "error");
  int is_admin = !strcmp(kind, "admin");
  if (is_admin) {
    const mj *st = mj_get(expect, "status");
    if (st) {
      if (o->http_status != atoi(st->text)) fail(r, "HTTP status %d, want %s", o->http_status, st->text);
    } else if (o->http_status < 200 || o->http_status > 299) {
      char *b = o->result ? mj_canonical(o->result) : strdup("");
      fail(r, "HTTP status %d (want 2xx): %.300s", o->http_status, b);
      free(b);
    }
  } else if (want_err) {
    if (o->rc == EDRLINK_OK) { fail(r, "succeeded, want error %s", want_err); return; }
    const char *got = o->err ? edrlink_error_name(o->err) : edrlink_result_name(o->rc);
    if (strcmp(got, want_err)) {
      fail(r, "error %s (%s), want %s", got, o->err ? edrlink_error_detail(o->err) : "", want_err);
      return;
    }
    if (!o->err) { fail(r, "no error object"); return; }
    const mj *ra = mj_get(expect, "retry_after");
    if (ra) {
      if (ra->type == MJ_NULL) {
        if (edrlink_error_has_retry_after(o->err))
          fail(r, "retry_after %llu, want none", (unsigned long long)edrlink_error_retry_after(o->err));
      } else if (!edrlink_error_has_retry_after(o->err) ||
                 edrlink_error_retry_after(o->err) != strtoull(ra->text, NULL, 10)) {
        fail(r, "retry_after %s%llu, want %s", edrlink_error_has_retry_after(o->err) ? "" : "none/",
             (unsigned long long)edrlink_error_retry_after(o->err), ra->text);
      }
    }
    long long hs = mj_int(expect, "http_status", -1), num = mj_int(expect, "number", -1);
    if (hs >= 0 && edrlink_error_http_status(o->err) != hs)
      fail(r, "http_status %u, want %lld", (unsigned)edrlink_error_http_status(o->err), hs);
    if (num >= 0 && (long long)edrlink_error_code(o->err) != num)
      fail(r, "number %u, want %lld", (unsigned)edrlink_error_code(o->err), num);
  } else if (o->rc != EDRLINK_OK) {
    fail(r, "failed with %s: %s", o->err ? edrlink_error_name(o->err) : edrlink_result_name(o->rc),
         o->err ? edrlink_error_detail(o->err) : "");
    return;
  }
  const mj *res = mj_get(expect, "result");
  for (size_t i = 0; res && res->type == MJ_OBJ && i < res->n; i++) {
    mj *got = mj_path(o->result, res->keys[i]);
    if (!mj_equal(got, res->items[i])) {
      char *g = got ? mj_canonical(got) : strdup("(absent)"), *w = mj_canonical(res->items[i]);
      fail(r, "result %s = %s, want %s", res->keys[i], g, w);
      free(g); free(w);
    }
    mj_free(got);
  }
  const mj *evs = mj_get(expect, "events"), *nevs = mj_get(expect, "no_events");
  const char *lvl = mj_str(expect, "log");
  if ((evs || nevs || lvl) && !sc) { fail(r, "events/log expectations need a client step"); return; }
  if (!sc) return;
  pthread_mutex_lock(&sc->hooks.mu);
  for (size_t i = 0; evs && i < evs->n; i++) {
    const char *w = evs->items[i]->text;
    int found = 0;
    for (size_t j = 0; w && j < sc->hooks.events->n && !found; j++) found = event_matches(sc->hooks.events->items[j], w);
    if (!found) {
      char *got = mj_canonical(sc->hooks.events);
      fail(r, "event %s not received (got %s)", w ? w : "?", got);
      free(got);
    }
  }
  for (size_t i = 0; nevs && i < nevs->n; i++) {
    const char *w = nevs->items[i]->text;
    for (size_t j = 0; w && j < sc->hooks.events->n; j++)
      if (event_matches(sc->hooks.events->items[j], w)) { fail(r, "event %s received, want none", w); break; }
  }
  if (lvl) {
    int want = level_num(lvl), found = 0;
    if (!want) fail(r, "unknown log level %s", lvl);
    for (size_t j = 0; j < sc->hooks.logs->n && !found; j++)
      found = mj_int(sc->hooks.logs->items[j], "level", 99) <= want;
    if (want && !found) fail(r, "no log record at %s or more severe (%zu records)", lvl, sc->hooks.logs->n);
  }
  pthread_mutex_unlock(&sc->hooks.mu);
}

static int is_client_kind(const char *k) {
  static const char *kinds[] = {"enroll", "enroll_package", "handshake", "submit", "submit_json", "send_test_detection",
                                "flush", "offboard", "rotate", "health", NULL};
  for (int i = 0; kinds[i]; i++) if (!strcmp(k, kinds[i])) return 1;
  return 0;
}

static int is_stateless_kind(const char *k) {
  return !strcmp(k, "inspect_token") || !strcmp(k, "verify_envelope") || !strcmp(k, "public_key_from_seed");
}

/* Runs one step; returns 0 when it passed (r->why is set otherwise). */
static int run_step(run_ctx *r, const mj *raw_step) {
  mj *step = substitute(r, raw_step);
  if (r->why) { mj_free(step); return 1; }
  const char *kind = mj_str(step, "do");
  const mj *expect = mj_get(step, "expect");
  const char *cname = mj_str(step, "client") ? mj_str(step, "client") : "a";
  outcome o = {0};
  scn_client *sc = NULL;
  if (!kind) fail(r, "step without \"do\"");
  else if (!strcmp(kind, "admin")) do_admin(r, step, &o);
  else if (!strcmp(kind, "client")) {
    do_client_new(r, step, cname, &o);
    sc = find_client(r, cname);
  } else if (is_client_kind(kind)) {
    sc = find_client(r, cname);
    if (!sc || !sc->c) fail(r, "client %s was not created", cname);
    else {
      hooks_reset_step(&sc->hooks);
      do_client_step(r, kind, step, sc, &o);
    }
  } else if (is_stateless_kind(kind)) do_stateless(r, kind, step, &o);
  else fail(r, "step kind \"%s\" is not implemented by the C runner", kind ? kind : "?");

  if (!r->why) check_expect(r, kind, expect, &o, sc);
  /* save */
  const mj *save = mj_get(step, "save");
  for (size_t i = 0; !r->why && save && save->type == MJ_OBJ && i < save->n; i++) {
    const char *path = save->items[i]->text;
    mj *v = path ? mj_path(o.result, path) : NULL;
    if (!v) { fail(r, "save %s: path %s absent from the result", save->keys[i], path ? path : "?"); break; }
    if (secret_var_name(save->keys[i]) && v->type == MJ_STR) add_secret(r, v->text);
    if (secret_var_name(save->keys[i]) && v->type != MJ_STR) collect_secrets(r, v, 1);
    mj_set(r->vars, save->keys[i], v);
  }
  /* no secret in any log message or error detail */
  if (o.err) check_no_secret(r, "an error detail", edrlink_error_detail(o.err));
  for (int i = 0; i < r->nclients; i++) {
    hook_log *h = &r->clients[i].hooks;
    pthread_mutex_lock(&h->mu);
    for (size_t j = 0; h->all_log && j < h->all_log->n; j++) check_no_secret(r, "a log message", h->all_log->items[j]->text);
    pthread_mutex_unlock(&h->mu);
  }
  edrlink_error_free(o.err);
  mj_free(o.result);
  mj_free(step);
  return r->why != NULL;
}

static int run_scenario(const char *path, const char *file) {
  char *text = read_file(path);
  mj *doc = text ? mj_parse(text) : NULL;
  free(text);
  if (!doc) { printf("FAIL %s: step -: not readable JSON\n", file); return 1; }
  run_ctx r = {0};
  r.file = file;
  r.vars = mj_new(MJ_OBJ, NULL);
  r.secrets = mj_new(MJ_ARR, NULL);
  unsigned char rnd[6];
  FILE *ur = fopen("/dev/urandom", "rb");
  if (!ur || fread(rnd, 1, sizeof rnd, ur) != sizeof rnd) memset(rnd, (int)getpid(), sizeof rnd);
  if (ur) fclose(ur);
  char tenant[64];
  snprintf(tenant, sizeof tenant, "scn-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
  mj_set(r.vars, "tenant", mj_new(MJ_STR, tenant));
  mj_set(r.vars, "partner", mj_new(MJ_STR, "acme-av"));
  mj_set(r.vars, "service_url", mj_new(MJ_STR, URL));

  /* setup: the tenant in region eu, the integration on */
  int failed = 0, idx = -1;
  char *body = xasprintf("{\"tenant_id\":\"%s\",\"region\":\"eu\"}", tenant);
  char *ipath = xasprintf("/admin/tenants/%s/integrations/acme-av", tenant);
  mj *setup = mj_new(MJ_ARR, NULL);
  mj *s1 = mj_new(MJ_OBJ, NULL);
  mj_set(s1, "do", mj_new(MJ_STR, "admin"));
  mj_set(s1, "method", mj_new(MJ_STR, "POST"));
  mj_set(s1, "path", mj_new(MJ_STR, "/admin/tenants"));
  mj_set(s1, "body", mj_parse(body));
  mj *s2 = mj_new(MJ_OBJ, NULL);
  mj_set(s2, "do", mj_new(MJ_STR, "admin"));
  mj_set(s2, "method", mj_new(MJ_STR, "PUT"));
  mj_set(s2, "path", mj_new(MJ_STR, ipath));
  mj_set(s2, "body", mj_parse("{\"enabled\":true}"));
  mj_push(setup, s1);
  mj_push(setup, s2);
  for (size_t i = 0; i < setup->n && !failed; i++) failed = run_step(&r, setup->items[i]);
  if (failed) printf("FAIL %s: setup: %s\n", file, r.why);
  free(body); free(ipath); mj_free(setup);

  const mj *steps = mj_get(doc, "steps");
  if (!failed && (!steps || steps->type != MJ_ARR || steps->n == 0)) {
    failed = 1;
    printf("FAIL %s: step -: no steps\n", file);
  }
  for (size_t i = 0; !failed && i < steps->n; i++) {
    idx = (int)i;
    if (run_step(&r, steps->items[i])) {
      failed = 1;
      const char *kind = mj_str(steps->items[i], "do");
      printf("FAIL %s: step %d (%s): %s\n", file, idx, kind ? kind : "?", r.why);
    }
  }
  for (int i = 0; i < r.nclients; i++) free_client(&r.clients[i]);
  free(r.why);
  mj_free(r.vars);
  mj_free(r.secrets);
  mj_free(doc);
  return failed;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  URL = getenv("EDRLINK_TEST_URL");
  ADMIN = getenv("EDRLINK_ADMIN_KEY");
  TMP = getenv("EDRLINK_TEST_TMP");
  const char *dir = getenv("EDRLINK_SCENARIOS_DIR") ? getenv("EDRLINK_SCENARIOS_DIR") : "tests/scenarios";
  const char *only = argc > 1 ? argv[1] : NULL;
  if (!URL || !ADMIN || !TMP) {
    printf("EDRLINK_TEST_URL, EDRLINK_ADMIN_KEY and EDRLINK_TEST_TMP must be set\nscenarios: 0 passed, 1 failed\n");
    return 1;
  }
  DIR *d = opendir(dir);
  if (!d) { printf("cannot open %s\nscenarios: 0 passed, 1 failed\n", dir); return 1; }
  char **files = NULL;
  size_t nfiles = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t n = strlen(de->d_name);
    if (n > 5 && !strcmp(de->d_name + n - 5, ".json") && (!only || strstr(de->d_name, only))) {
      files = realloc(files, (nfiles + 1) * sizeof *files);
      files[nfiles++] = strdup(de->d_name);
    }
  }
  closedir(d);
  if (nfiles) qsort(files, nfiles, sizeof *files, cmp_str);
  int passed = 0, failed = 0;
  for (size_t i = 0; i < nfiles; i++) {
    char *path = xasprintf("%s/%s", dir, files[i]);
    if (run_scenario(path, files[i])) failed++;
    else { passed++; fprintf(stderr, "ok   %s\n", files[i]); }
    free(path);
    free(files[i]);
  }
  free(files);
  printf("scenarios: %d passed, %d failed\n", passed, failed);
  return (failed || (size_t)passed != nfiles) ? 1 : 0;
}
