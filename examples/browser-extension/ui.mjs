// Shared by the options page and the popup: talking to the service worker and
// rendering its status. The pages hold no edrlink state of their own.
export const EXPLAIN = {
  malformed: 'This is not a valid access token (copy the whole token from the portal).',
  wrong_type: 'This text is not an edrlink access token.',
  token_expired: 'The token has expired: generate a new one in the portal.',
  token_not_yet_valid: 'The token is not valid yet: check this computer\'s clock.',
  token_revoked: 'The administrator revoked this token: generate a new one.',
  token_exhausted: 'The token was used by as many endpoints as it allows: generate a new one.',
  integration_disabled: 'The integration is turned off in the portal: turn it on, then generate a token.',
  epoch_mismatch: 'The integration was turned off and on again since this token was issued or this browser enrolled: paste a new token in the options.',
  wrong_region: 'The token belongs to another data region.',
  possible_clone: 'The service saw this device with another key (re-imaged or cloned profile).',
  flow_blocked: 'The integration is turned off in the portal: the data flow is blocked. Detections are kept and sent once it is turned back on.',
  revoked: 'This browser\'s credential was revoked (the integration was turned off and on): paste a new token in the options.',
  offboarded: 'This browser was offboarded: paste a new token to onboard again.',
  needs_reenroll: 'Authentication keeps failing: paste a new token in the options.',
  transport: 'The service cannot be reached; detections are kept and retried.',
  service_unavailable: 'The service is temporarily unavailable; detections are kept and retried.',
  rate_limited: 'Too many requests; the service asked to wait.',
  invalid_state: 'Enroll first: paste an access token in the options.',
  queue_full: 'The local detection queue is full.',
};

export const FLOW_TEXT = {
  none: 'not enrolled',
  unknown: 'enrolled, waiting for the service\'s flow decision',
  open: 'open — detections flow',
  blocked: 'BLOCKED — the integration is turned off; detections are kept',
  revoked: 'REVOKED — a new access token is needed',
};

export async function call(op, args = {}) {
  const r = await chrome.runtime.sendMessage({ op, ...args });
  if (!r) throw Object.assign(new Error('no answer from the extension service worker'), { code: 'internal' });
  if (!r.ok) throw Object.assign(new Error(r.error.message), r.error);
  return r;
}

export const $ = (id) => document.getElementById(id);

export function showError(box, e) {
  if (!e) { box.hidden = true; box.textContent = ''; delete box.dataset.code; return; }
  const code = e.code || 'internal';
  const msg = String(e.message || e);
  const head = document.createElement('div');
  head.textContent = EXPLAIN[code] || 'The operation failed.';
  const detail = document.createElement('div');
  const c = document.createElement('code');
  c.textContent = code;
  detail.append(c, ' — ' + (typeof e.detail === 'string' ? e.detail : msg));
  if (e.retryAfter) detail.append(` (retry after ${e.retryAfter} s)`);
  box.replaceChildren(head, detail);
  box.dataset.code = code;
  box.hidden = false;
}

const ago = (t) => (t ? `${Math.max(0, Math.floor(Date.now() / 1000) - t)} s ago` : 'never');

/** Fills the common status block (ids: flow, onboarded, queued, pending, last-error). */
export function renderStatus(s) {
  $('flow').dataset.flow = s.flow;
  $('flow').textContent = FLOW_TEXT[s.flow] || s.flow;
  $('onboarded').dataset.onboarded = String(s.onboarded);
  $('onboarded').textContent = s.onboarded ? `yes — installation ${s.installation_id}` : 'no';
  $('queued').dataset.count = String(s.queued_detections);
  $('queued').textContent = `${s.queued_detections} detection(s) queued (${s.queued_events} event(s) in all)` +
    (s.pending_batch ? `; batch ${s.pending_batch.batch_id.slice(0, 8)}… #${s.pending_batch.seq} in flight` : '');
  $('delivered').dataset.total = String(s.delivered_total);
  $('delivered').textContent = `${s.delivered_total} event(s) delivered; last delivery ${ago(s.last_delivery)}` +
    (s.retry ? `; retry every ${Math.round(s.retry.periodInMinutes * 60)} s` : '');
  const le = $('last-error');
  if (s.last_error) {
    le.dataset.code = s.last_error.code;
    le.textContent = `${EXPLAIN[s.last_error.code] || ''} [${s.last_error.code}: ${s.last_error.detail}] ${ago(s.last_error.at)}`;
  } else {
    le.dataset.code = '';
    le.textContent = 'none';
  }
}

export function renderDetections(list, detections) {
  list.replaceChildren(...detections.map((d) => {
    const li = document.createElement('li');
    li.textContent = `${d.time} ${d.action} ${d.severity} ${d.threat_name} — ${d.url} — ${d.delivered ? 'delivered' : 'queued'}`;
    li.dataset.delivered = String(d.delivered);
    return li;
  }));
}
