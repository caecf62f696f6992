/* The C suite's stateless part alone (version, result codes, errors, memory, EICAR, keys,
 * envelopes, tokens, down-level signing, the shared vectors): the entry point scripts/dist.sh
 * builds for targets whose test binary runs under an emulator without the POSIX pieces the
 * client part's test harness uses (Windows under wine). The client part runs there as the
 * example partner agent against the reference service instead. */
#include <stdio.h>
#include "../harness.h"
#include "../suite.h"

int t_passed, t_failed;
const char *t_section = "";

int main(void) {
  run_stateless_tests();
  printf("%d passed, %d failed\n", t_passed, t_failed);
  return t_failed ? 1 : 0;
}
