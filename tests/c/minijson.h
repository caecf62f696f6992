/* A minimal JSON reader for the C test suite (no dependencies; test code only).
 * Parses into a small tree; canonical form (sorted keys, no whitespace) lets the
 * tests compare JSON values regardless of key order. */
#ifndef MINIJSON_H
#define MINIJSON_H
#include <stddef.h>

typedef enum { MJ_NULL, MJ_BOOL, MJ_NUM, MJ_STR, MJ_ARR, MJ_OBJ } mj_type;

typedef struct mj {
  mj_type type;
  char *text;          /* MJ_STR: decoded UTF-8; MJ_NUM: number text; MJ_BOOL: "true"/"false" */
  size_t n;            /* items in arrays/objects */
  char **keys;         /* object keys (decoded) */
  struct mj **items;
} mj;

mj *mj_parse(const char *text);           /* NULL on syntax error */
void mj_free(mj *v);
const mj *mj_get(const mj *obj, const char *key);
const char *mj_str(const mj *obj, const char *key);   /* string member or NULL */
long long mj_int(const mj *obj, const char *key, long long dflt);
char *mj_canonical(const mj *v);          /* malloc'd; sorted keys, compact */
char *mj_canonical_text(const char *text);/* parse + canonical; NULL on error */
mj *mj_new(mj_type t, const char *text);  /* text: MJ_STR/MJ_NUM/MJ_BOOL contents or NULL */
mj *mj_new_int(long long n);
mj *mj_clone(const mj *v);
void mj_set(mj *obj, const char *key, mj *val);   /* takes val; replaces an existing key */
void mj_push(mj *arr, mj *val);                   /* takes val */
int mj_equal(const mj *a, const mj *b);           /* JSON equality, numbers by value */
/* Value at a dot path ("a.0.b"; a trailing '#' gives the length of the array
 * or object there) as a new value, or NULL when absent. */
mj *mj_path(const mj *root, const char *path);
#endif
