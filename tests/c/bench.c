/* C side of the C API overhead benchmark (tests/c/bench.sh). Prints
 * `name ns_per_op` lines, best of 5 rounds. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "edrlink.h"

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static volatile const char *sink;

int main(void) {
  uint8_t seed[32], payload[1024];
  memset(seed, 7, sizeof seed);
  memset(payload, 0x5a, sizeof payload);
  double best = 1e30;
  for (int r = 0; r < 5; r++) {
    const long n = 2000000;
    double t = now_ns();
    for (long i = 0; i < n; i++) sink = edrlink_result_name(EDRLINK_TOKEN_EXPIRED);
    double ns = (now_ns() - t) / (double)n;
    if (ns < best) best = ns;
  }
  printf("c_result_name %.1f\n", best);
  best = 1e30;
  for (int r = 0; r < 5; r++) {
    const long n = 2000000;
    double t = now_ns();
    for (long i = 0; i < n; i++) sink = edrlink_version();
    double ns = (now_ns() - t) / (double)n;
    if (ns < best) best = ns;
  }
  printf("c_version %.1f\n", best);
  best = 1e30;
  for (int r = 0; r < 5; r++) {
    const long n = 20000;
    double t = now_ns();
    for (long i = 0; i < n; i++) {
      char *env = NULL;
      if (edrlink_envelope_seal(seed, 32, "application/octet-stream", payload, sizeof payload, &env, NULL) != EDRLINK_OK) return 1;
      edrlink_string_free(env);
    }
    double ns = (now_ns() - t) / (double)n;
    if (ns < best) best = ns;
  }
  printf("c_seal_1k %.1f\n", best);
  return 0;
}
