// Options page: paste + inspect the access token (claims, live countdown, warnings), enroll
// (done by the service worker, which keeps the credential), status, a simulated block.
// The token is inspected locally with the wasm package (no signature check: display only).
import { init, inspectToken, version } from './edrlink/js/web.mjs';
import { $, call, showError, renderStatus, renderDetections } from './ui.mjs';

let claims = null;
let tokenText = '';
let timer = null;

function fmtLeft(s) {
  const neg = s < 0; s = Math.abs(s);
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), sec = s % 60;
  const t = (d ? `${d}d ` : '') + `${String(h).padStart(2, '0')}h ${String(m).padStart(2, '0')}m ${String(sec).padStart(2, '0')}s`;
  return neg ? `${t} ago` : t;
}

// The status (and its expiry-warning threshold) comes from the SDK's inspection: the
// console re-inspects every second rather than re-coding the thresholds here.
function tick() {
  if (!claims) return;
  let info;
  try { info = inspectToken(tokenText); } catch { return; }
  const left = info.seconds_left;
  const text = {
    not_yet_valid: `Not valid yet (starts in ${fmtLeft(info.claims.nbf - info.checked_at)}) — check this computer's clock`,
    expired: `EXPIRED ${fmtLeft(left)} — generate a new token in the portal`,
    expires_soon: `Expires soon: ${fmtLeft(left)} left — enroll now`,
    valid: `Valid: ${fmtLeft(left)} left`,
  }[info.status];
  const el = $('countdown');
  el.textContent = text;
  el.dataset.status = info.status;
  el.dataset.secondsLeft = String(left);
}

async function warnings(info) {
  const w = [];
  const c = info.claims;
  let origin = null;
  try { origin = new URL(c.service_url).origin; } catch { w.push(`The token's service URL is not a URL: ${c.service_url}`); }
  if (origin) {
    if (!(await chrome.permissions.contains({ origins: [origin + '/*'] }))) {
      w.push(`This extension has no host permission for ${origin}: add it to host_permissions in manifest.json, or requests will fail.`);
    }
    if (origin.startsWith('http:') && !/^http:\/\/(127\.0\.0\.1|localhost)(:|$)/.test(origin)) w.push('The service URL is not HTTPS.');
  }
  if (info.status === 'expires_soon') w.push(`The token expires in less than ${fmtLeft(info.expiry_warning_secs)}.`);
  if (info.status === 'expired') w.push('The token has expired: it will be refused.');
  if (info.status === 'not_yet_valid') w.push('The token is not valid yet: this computer\'s clock may be wrong.');
  if (c.max_uses === 1) w.push('Single-use token: it cannot enroll another browser.');
  $('warnings').replaceChildren(...w.map((t) => Object.assign(document.createElement('li'), { textContent: t })));
}

async function inspect() {
  showError($('error'), null);
  clearInterval(timer);
  claims = null;
  $('claims').replaceChildren();
  $('warnings').replaceChildren();
  $('countdown').textContent = '';
  $('countdown').dataset.status = 'none';
  const token = $('token').value.trim();
  if (!token) return null;
  try {
    tokenText = token;
    const info = inspectToken(token);
    claims = info.claims;
    const rows = [['tenant', claims.tenant_id], ['partner', claims.partner_id], ['region', claims.region],
      ['service', claims.service_url], ['expires', new Date(claims.exp * 1000).toISOString()],
      ['uses', String(claims.max_uses)], ['token id', claims.jti], ['signing key', info.kid]];
    for (const [k, v] of rows) {
      $('claims').append(Object.assign(document.createElement('dt'), { textContent: k }),
        Object.assign(document.createElement('dd'), { textContent: v }));
    }
    tick();
    timer = setInterval(tick, 1000);
    await warnings(info);
    return info;
  } catch (e) { showError($('error'), e); return null; }
}

async function refresh() {
  try {
    const { status } = await call('status');
    renderStatus(status);
    renderDetections($('detections'), status.detections);
    $('health').textContent = JSON.stringify(status.health || {}, null, 2);
    if (document.activeElement !== $('retry-period')) $('retry-period').value = String(status.settings.retryPeriodSecs);
    document.body.dataset.flow = status.flow;
  } catch (e) { showError($('error'), e); }
}

async function run(button, fn) {
  showError($('error'), null);
  button.disabled = true;
  try { await fn(); } catch (e) { showError($('error'), e); } finally { button.disabled = false; await refresh(); }
}

$('inspect').addEventListener('click', inspect);
$('token').addEventListener('change', inspect);
$('enroll').addEventListener('click', () => run($('enroll'), async () => {
  const info = await inspect();
  if (!info) return;
  if (info.status === 'expired') throw Object.assign(new Error('token_expired: the token has expired'), { code: 'token_expired' });
  await call('enroll', { token: $('token').value.trim() });
  $('token').value = ''; // not kept: the credential replaces it
}));
$('retry').addEventListener('click', () => run($('retry'), () => call('retry')));
$('offboard').addEventListener('click', () => run($('offboard'), () => call('offboard')));
$('simulate').addEventListener('click', () => run($('simulate'), () => call('block', { url: $('test-url').value })));
$('save-settings').addEventListener('click', () => run($('save-settings'), () => call('settings', { retryPeriodSecs: Number($('retry-period').value) })));

(async () => {
  try {
    await init(chrome.runtime.getURL('edrlink/pkg/web/edrlink_wasm_bg.wasm'));
    $('version').textContent = 'edrlink ' + version();
    await refresh();
    setInterval(refresh, 1000);
    document.body.dataset.ready = '1';
  } catch (e) { showError($('error'), e); }
})();
