/* edrlink C API test suite. Environment (set by tests/c/run.sh):
 *   EDRLINK_TEST_URL        reference service base URL (client tests skipped if unset: counted as a failure)
 *   EDRLINK_ADMIN_KEY       its admin key
 *   EDRLINK_TEST_VECTORS    tests/vectors converted to lines by run.sh
 *   EDRLINK_TEST_TMP        scratch directory
 *   EDRLINK_CARGO_VERSION   version from Cargo.toml */
#include <stdio.h>
#include <stdlib.h>
#include "harness.h"
#include "suite.h"

int t_passed, t_failed;
const char *t_section = "";

int main(void) {
  run_stateless_tests();
  const char *url = getenv("EDRLINK_TEST_URL");
  const char *key = getenv("EDRLINK_ADMIN_KEY");
  const char *tmp = getenv("EDRLINK_TEST_TMP");
  CHECK(url && key && tmp, "EDRLINK_TEST_URL, EDRLINK_ADMIN_KEY and EDRLINK_TEST_TMP must be set");
  if (url && key && tmp) {
    run_client_tests(url, key, tmp);
    run_hostkey_tests(url, key, tmp);
  }
  printf("%d passed, %d failed\n", t_passed, t_failed);
  return t_failed ? 1 : 0;
}
