/* A small partner agent in C: enroll with an access token, send a batch and
 * the EICAR test detection, print health.
 *
 *   partner_agent [TOKEN]
 *   env: EDRLINK_TOKEN (if no argument), EDRLINK_DATA_DIR (default ./edrlink-data),
 *        EDRLINK_SERVICE_URL (optional override of the token's service URL)
 *
 * Build: make PREFIX=/usr/local   (see Makefile) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <edrlink.h>

static int fail(const char *what, edrlink_result rc, edrlink_error *err) {
  fprintf(stderr, "%s failed: %s (%u, HTTP %u): %s\n", what, edrlink_result_name(rc), (unsigned)rc,
          (unsigned)edrlink_error_http_status(err), err ? edrlink_error_detail(err) : edrlink_result_message(rc));
  if (edrlink_error_has_retry_after(err))
    fprintf(stderr, "  the service asks to retry in %llu s\n", (unsigned long long)edrlink_error_retry_after(err));
  edrlink_error_free(err);
  return 1;
}

/* edrlink's diagnostics into the host's log (here: stderr). Never holds a secret. */
static void on_log(void *userdata, uint32_t level, const char *message) {
  static const char *names[] = {"?", "error", "warn", "info", "debug", "trace"};
  fprintf((FILE *)userdata, "[edrlink %s] %s\n", names[level <= 5 ? level : 0], message);
}

/* State changes (flow blocked, new token needed, queue full, ...) as JSON. */
static void on_event(void *userdata, const char *event_json) {
  (void)userdata;
  printf("event: %s\n", event_json);
}

int main(int argc, char **argv) {
  const char *token = argc > 1 ? argv[1] : getenv("EDRLINK_TOKEN");
  const char *data_dir = getenv("EDRLINK_DATA_DIR") ? getenv("EDRLINK_DATA_DIR") : "./edrlink-data";
  char host[256] = "unknown";
  gethostname(host, sizeof host - 1);

  printf("edrlink %s (protocol v%u)\n", edrlink_version(), edrlink_protocol_version());

  edrlink_client_options o = {0};
  o.service_url = getenv("EDRLINK_SERVICE_URL"); /* NULL: use the token's */
  o.data_dir = data_dir;
  o.device_id = host; /* a real product uses /etc/machine-id or a hardware UUID */
  o.hostname = host;
  o.os = "linux";
  o.os_version = "6";
  o.product = "Example AV";
  o.product_version = "1.0.0";

  edrlink_client *client = NULL;
  edrlink_error *err = NULL;
  edrlink_result rc = edrlink_client_new(&o, NULL /* built-in HTTPS transport */, &client, &err);
  if (rc != EDRLINK_OK) return fail("create client", rc, err);
  edrlink_client_set_log_callback(client, on_log, stderr, EDRLINK_LOG_INFO, NULL);
  edrlink_client_set_event_callback(client, on_event, NULL, NULL);

  edrlink_health h;
  edrlink_client_health(client, &h, NULL);
  if (!h.onboarded) {
    if (!token) {
      fprintf(stderr, "not onboarded: pass an access token (argument or EDRLINK_TOKEN)\n");
      edrlink_client_free(client);
      return 2;
    }
    rc = edrlink_client_enroll(client, token, &h, &err);
    if (rc != EDRLINK_OK) { edrlink_client_free(client); return fail("enroll", rc, err); }
    printf("enrolled\n");
  }

  /* a batch of telemetry */
  char ev[256], now[32];
  time_t t = time(NULL);
  strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
  for (int i = 0; i < 5; i++) {
    snprintf(ev, sizeof ev, "{\"type\":\"generic\",\"time\":\"%s\",\"name\":\"process_start\",\"data\":{\"pid\":%d}}", now, 1000 + i);
    if ((rc = edrlink_client_submit_json(client, ev, &err)) != EDRLINK_OK) { edrlink_client_free(client); return fail("submit", rc, err); }
  }
  /* a detection through the typed struct */
  edrlink_detection d = {0};
  d.threat_name = "Example.Trojan";
  d.file_path = "/tmp/suspicious.bin";
  d.severity = EDRLINK_SEVERITY_MEDIUM;
  d.action = EDRLINK_ACTION_QUARANTINED;
  if ((rc = edrlink_client_submit_detection(client, &d, &err)) != EDRLINK_OK) { edrlink_client_free(client); return fail("detection", rc, err); }
  /* the portal's detection test */
  if ((rc = edrlink_client_send_test_detection(client, &err)) != EDRLINK_OK) { edrlink_client_free(client); return fail("EICAR test", rc, err); }

  edrlink_flush_outcome out;
  rc = edrlink_client_flush(client, 30, &out, &err);
  if (rc != EDRLINK_OK) { edrlink_client_free(client); return fail("flush", rc, err); }
  printf("delivered %llu events, %llu still queued\n", (unsigned long long)out.delivered, (unsigned long long)out.queued);

  char *json = NULL;
  if (edrlink_client_health_json(client, &json, NULL) == EDRLINK_OK) {
    printf("health: %s\n", json);
    edrlink_string_free(json);
  }
  edrlink_client_free(client);
  return 0;
}
