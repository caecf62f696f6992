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
#endif
