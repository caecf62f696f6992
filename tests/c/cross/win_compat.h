/* POSIX pieces the C suite's stateless part uses that mingw-w64's C runtime lacks
 * (force-included with -include when scripts/dist.sh builds it for Windows). */
#ifndef EDRLINK_WIN_COMPAT_H
#define EDRLINK_WIN_COMPAT_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

static inline char *edrlink_compat_strndup(const char *s, size_t n) {
  size_t len = strnlen(s, n);
  char *p = malloc(len + 1);
  if (p) { memcpy(p, s, len); p[len] = 0; }
  return p;
}
#define strndup edrlink_compat_strndup

/* getline(3): reads one line including its '\n', growing *line as needed. */
static inline ssize_t edrlink_compat_getline(char **line, size_t *cap, FILE *f) {
  size_t len = 0;
  int c;
  if (!*line || *cap == 0) { *cap = 256; *line = malloc(*cap); if (!*line) return -1; }
  while ((c = fgetc(f)) != EOF) {
    if (len + 2 > *cap) {
      char *p = realloc(*line, *cap * 2);
      if (!p) return -1;
      *line = p; *cap *= 2;
    }
    (*line)[len++] = (char)c;
    if (c == '\n') break;
  }
  if (len == 0) return -1;
  (*line)[len] = 0;
  return (ssize_t)len;
}
#define getline edrlink_compat_getline
#endif
