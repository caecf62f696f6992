/* A tiny test harness: every CHECK is one counted assertion. */
#ifndef HARNESS_H
#define HARNESS_H
#include <stdio.h>
#include <string.h>

extern int t_passed, t_failed;
extern const char *t_section;

#define CHECK(cond, ...)                                                          \
  do {                                                                            \
    if (cond) {                                                                   \
      t_passed++;                                                                 \
    } else {                                                                      \
      t_failed++;                                                                 \
      fprintf(stderr, "FAIL [%s] %s:%d: %s: ", t_section, __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                               \
      fputc('\n', stderr);                                                        \
    }                                                                             \
  } while (0)

/* Checks a result code, printing both names on mismatch. */
#define CHECK_RC(rc_expr, expected)                                               \
  do {                                                                            \
    edrlink_result rc_ = (rc_expr);                                               \
    CHECK(rc_ == (expected), "got %u %s, want %u %s", (unsigned)rc_,             \
          edrlink_result_name(rc_), (unsigned)(expected), edrlink_result_name(expected)); \
  } while (0)

static inline int streq_(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }
#define STREQ(a, b) streq_((a), (b))
#define SECTION(name) (t_section = (name), fprintf(stderr, "-- %s\n", t_section))
#endif
