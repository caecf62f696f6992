#ifndef SUITE_H
#define SUITE_H
#include "edrlink.h"
void expect_err(edrlink_error **err, edrlink_result want, int line);
void run_stateless_tests(void);
void run_client_tests(const char *url, const char *admin_key, const char *tmpdir);
void run_hostkey_tests(const char *url, const char *admin_key, const char *tmpdir);
#endif
