#define _GNU_SOURCE
#include "minijson.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { const char *p; } cur;

static void ws(cur *c) { while (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t') c->p++; }

static mj *new_v(mj_type t) { mj *v = calloc(1, sizeof *v); v->type = t; return v; }

static void put_utf8(char **o, unsigned cp) {
  char *p = *o;
  if (cp < 0x80) *p++ = (char)cp;
  else if (cp < 0x800) { *p++ = (char)(0xC0 | (cp >> 6)); *p++ = (char)(0x80 | (cp & 0x3F)); }
  else if (cp < 0x10000) { *p++ = (char)(0xE0 | (cp >> 12)); *p++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *p++ = (char)(0x80 | (cp & 0x3F)); }
  else { *p++ = (char)(0xF0 | (cp >> 18)); *p++ = (char)(0x80 | ((cp >> 12) & 0x3F)); *p++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *p++ = (char)(0x80 | (cp & 0x3F)); }
  *o = p;
}

static int hex4(const char *s, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char ch = s[i]; v <<= 4;
    if (ch >= '0' && ch <= '9') v |= (unsigned)(ch - '0');
    else if (ch >= 'a' && ch <= 'f') v |= (unsigned)(ch - 'a' + 10);
    else if (ch >= 'A' && ch <= 'F') v |= (unsigned)(ch - 'A' + 10);
    else return -1;
  }
  *out = v; return 0;
}

static char *parse_string(cur *c) {
  if (*c->p != '"') return NULL;
  c->p++;
  const char *start = c->p;
  size_t cap = 0;
  while (*c->p && *c->p != '"') { if (*c->p == '\\' && c->p[1]) c->p++; c->p++; cap++; }
  if (*c->p != '"') return NULL;
  char *out = malloc(cap * 4 + 1), *o = out;
  for (const char *s = start; s < c->p; s++) {
    if (*s != '\\') { *o++ = *s; continue; }
    s++;
    switch (*s) {
      case '"': *o++ = '"'; break;
      case '\\': *o++ = '\\'; break;
      case '/': *o++ = '/'; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'n': *o++ = '\n'; break;
      case 'r': *o++ = '\r'; break;
      case 't': *o++ = '\t'; break;
      case 'u': {
        unsigned cp;
        if (hex4(s + 1, &cp)) { free(out); return NULL; }
        s += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && s[1] == '\\' && s[2] == 'u') {
          unsigned lo;
          if (hex4(s + 3, &lo) == 0 && lo >= 0xDC00 && lo < 0xE000) { cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00); s += 6; }
        }
        put_utf8(&o, cp);
        break;
      }
      default: free(out); return NULL;
    }
  }
  *o = 0;
  c->p++;
  return out;
}

static mj *parse_value(cur *c, int depth);

static mj *parse_value(cur *c, int depth) {
  if (depth > 64) return NULL;
  ws(c);
  mj *v = NULL;
  if (*c->p == '{' || *c->p == '[') {
    int obj = *c->p == '{';
    char close = obj ? '}' : ']';
    v = new_v(obj ? MJ_OBJ : MJ_ARR);
    c->p++; ws(c);
    if (*c->p == close) { c->p++; return v; }
    for (;;) {
      char *key = NULL;
      ws(c);
      if (obj) {
        key = parse_string(c);
        if (!key) goto fail;
        ws(c);
        if (*c->p != ':') { free(key); goto fail; }
        c->p++;
      }
      mj *item = parse_value(c, depth + 1);
      if (!item) { free(key); goto fail; }
      v->items = realloc(v->items, (v->n + 1) * sizeof *v->items);
      if (obj) v->keys = realloc(v->keys, (v->n + 1) * sizeof *v->keys), v->keys[v->n] = key;
      v->items[v->n++] = item;
      ws(c);
      if (*c->p == ',') { c->p++; continue; }
      if (*c->p == close) { c->p++; return v; }
      goto fail;
    }
  } else if (*c->p == '"') {
    char *s = parse_string(c);
    if (!s) return NULL;
    v = new_v(MJ_STR); v->text = s; return v;
  } else if (!strncmp(c->p, "true", 4) || !strncmp(c->p, "false", 5)) {
    int t = c->p[0] == 't';
    v = new_v(MJ_BOOL); v->text = strdup(t ? "true" : "false"); c->p += t ? 4 : 5; return v;
  } else if (!strncmp(c->p, "null", 4)) {
    c->p += 4; return new_v(MJ_NULL);
  } else if (*c->p == '-' || (*c->p >= '0' && *c->p <= '9')) {
    const char *s = c->p;
    c->p++;
    while (strchr("0123456789.eE+-", *c->p) && *c->p) c->p++;
    v = new_v(MJ_NUM); v->text = strndup(s, (size_t)(c->p - s)); return v;
  }
  return NULL;
fail:
  mj_free(v);
  return NULL;
}

mj *mj_parse(const char *text) {
  if (!text) return NULL;
  cur c = { text };
  mj *v = parse_value(&c, 0);
  if (!v) return NULL;
  ws(&c);
  if (*c.p) { mj_free(v); return NULL; }
  return v;
}

void mj_free(mj *v) {
  if (!v) return;
  for (size_t i = 0; i < v->n; i++) { mj_free(v->items[i]); if (v->keys) free(v->keys[i]); }
  free(v->items); free(v->keys); free(v->text); free(v);
}

const mj *mj_get(const mj *o, const char *key) {
  if (!o || o->type != MJ_OBJ) return NULL;
  for (size_t i = 0; i < o->n; i++) if (!strcmp(o->keys[i], key)) return o->items[i];
  return NULL;
}

const char *mj_str(const mj *o, const char *key) {
  const mj *v = mj_get(o, key);
  return v && v->type == MJ_STR ? v->text : NULL;
}

long long mj_int(const mj *o, const char *key, long long dflt) {
  const mj *v = mj_get(o, key);
  return v && v->type == MJ_NUM ? strtoll(v->text, NULL, 10) : dflt;
}

typedef struct { char *b; size_t len, cap; } sbuf;
static void sb_put(sbuf *s, const char *t, size_t n) {
  if (s->len + n + 1 > s->cap) { s->cap = (s->len + n + 1) * 2; s->b = realloc(s->b, s->cap); }
  memcpy(s->b + s->len, t, n); s->len += n; s->b[s->len] = 0;
}
static void sb_str(sbuf *s, const char *t) {
  sb_put(s, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)t; *p; p++) {
    char e[8];
    if (*p == '"') sb_put(s, "\\\"", 2);
    else if (*p == '\\') sb_put(s, "\\\\", 2);
    else if (*p < 0x20) { snprintf(e, sizeof e, "\\u%04x", *p); sb_put(s, e, 6); }
    else sb_put(s, (const char *)p, 1);
  }
  sb_put(s, "\"", 1);
}

static const mj *sort_ctx;
static int cmp_keys(const void *a, const void *b) {
  size_t i = *(const size_t *)a, j = *(const size_t *)b;
  return strcmp(sort_ctx->keys[i], sort_ctx->keys[j]);
}

static void canon(sbuf *s, const mj *v) {
  switch (v->type) {
    case MJ_NULL: sb_put(s, "null", 4); break;
    case MJ_BOOL: case MJ_NUM: sb_put(s, v->text, strlen(v->text)); break;
    case MJ_STR: sb_str(s, v->text); break;
    case MJ_ARR:
      sb_put(s, "[", 1);
      for (size_t i = 0; i < v->n; i++) { if (i) sb_put(s, ",", 1); canon(s, v->items[i]); }
      sb_put(s, "]", 1); break;
    case MJ_OBJ: {
      size_t *idx = malloc((v->n + 1) * sizeof *idx);
      for (size_t i = 0; i < v->n; i++) idx[i] = i;
      const mj *saved = sort_ctx; sort_ctx = v;
      qsort(idx, v->n, sizeof *idx, cmp_keys);
      sort_ctx = saved;
      sb_put(s, "{", 1);
      for (size_t i = 0; i < v->n; i++) {
        if (i) sb_put(s, ",", 1);
        sb_str(s, v->keys[idx[i]]); sb_put(s, ":", 1); canon(s, v->items[idx[i]]);
      }
      sb_put(s, "}", 1);
      free(idx);
    }
  }
}

char *mj_canonical(const mj *v) {
  sbuf s = {0};
  sb_put(&s, "", 0);
  if (v) canon(&s, v);
  return s.b;
}

char *mj_canonical_text(const char *text) {
  mj *v = mj_parse(text);
  if (!v) return NULL;
  char *out = mj_canonical(v);
  mj_free(v);
  return out;
}

/* ---- building, copying, comparing, paths (the scenario runner) ---- */

mj *mj_new(mj_type t, const char *text) {
  mj *v = new_v(t);
  if (text) v->text = strdup(text);
  return v;
}

mj *mj_new_int(long long n) {
  char b[32];
  snprintf(b, sizeof b, "%lld", n);
  return mj_new(MJ_NUM, b);
}

mj *mj_clone(const mj *v) {
  if (!v) return NULL;
  mj *c = new_v(v->type);
  if (v->text) c->text = strdup(v->text);
  c->n = v->n;
  if (v->n) {
    c->items = calloc(v->n, sizeof *c->items);
    for (size_t i = 0; i < v->n; i++) c->items[i] = mj_clone(v->items[i]);
    if (v->keys) {
      c->keys = calloc(v->n, sizeof *c->keys);
      for (size_t i = 0; i < v->n; i++) c->keys[i] = strdup(v->keys[i]);
    }
  }
  return c;
}

void mj_set(mj *obj, const char *key, mj *val) {
  if (!obj || obj->type != MJ_OBJ) { mj_free(val); return; }
  for (size_t i = 0; i < obj->n; i++)
    if (!strcmp(obj->keys[i], key)) { mj_free(obj->items[i]); obj->items[i] = val; return; }
  obj->items = realloc(obj->items, (obj->n + 1) * sizeof *obj->items);
  obj->keys = realloc(obj->keys, (obj->n + 1) * sizeof *obj->keys);
  obj->keys[obj->n] = strdup(key);
  obj->items[obj->n++] = val;
}

void mj_push(mj *arr, mj *val) {
  if (!arr || arr->type != MJ_ARR) { mj_free(val); return; }
  arr->items = realloc(arr->items, (arr->n + 1) * sizeof *arr->items);
  arr->items[arr->n++] = val;
}

int mj_equal(const mj *a, const mj *b) {
  if (!a || !b) return a == b;
  if (a->type != b->type) return 0;
  switch (a->type) {
    case MJ_NULL: return 1;
    case MJ_NUM: return strtod(a->text, NULL) == strtod(b->text, NULL);
    case MJ_BOOL: case MJ_STR: return !strcmp(a->text, b->text);
    case MJ_ARR:
      if (a->n != b->n) return 0;
      for (size_t i = 0; i < a->n; i++) if (!mj_equal(a->items[i], b->items[i])) return 0;
      return 1;
    case MJ_OBJ:
      if (a->n != b->n) return 0;
      for (size_t i = 0; i < a->n; i++) if (!mj_equal(a->items[i], mj_get(b, a->keys[i]))) return 0;
      return 1;
  }
  return 0;
}

mj *mj_path(const mj *root, const char *path) {
  char *p = strdup(path), *save = NULL;
  size_t len = strlen(p);
  int count = len > 0 && p[len - 1] == '#';
  if (count) p[len - 1] = 0;
  const mj *cur = root;
  for (char *tok = strtok_r(p, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save)) {
    if (cur->type == MJ_OBJ) cur = mj_get(cur, tok);
    else if (cur->type == MJ_ARR) {
      char *end;
      unsigned long i = strtoul(tok, &end, 10);
      cur = (*tok && !*end && i < cur->n) ? cur->items[i] : NULL;
    } else cur = NULL;
  }
  free(p);
  if (!cur) return NULL;
  if (count) return (cur->type == MJ_ARR || cur->type == MJ_OBJ) ? mj_new_int((long long)cur->n) : NULL;
  return mj_clone(cur);
}
