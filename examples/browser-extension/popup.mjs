// Popup: health (onboarded, flow state, queued detections, last error) and a simulated block.
import { $, call, showError, renderStatus, renderDetections } from './ui.mjs';

let n = 0;
async function refresh() {
  try {
    const { status } = await call('status');
    renderStatus(status);
    renderDetections($('detections'), status.detections.slice(0, 5));
    document.body.dataset.ready = '1';
  } catch (e) { showError($('error'), e); }
}
async function run(button, fn) {
  showError($('error'), null);
  button.disabled = true;
  try { await fn(); } catch (e) { showError($('error'), e); } finally { button.disabled = false; await refresh(); }
}
$('simulate').addEventListener('click', () => run($('simulate'), () =>
  call('block', { url: `http://downloads.example.test/popup-${Date.now()}-${++n}.exe` })));
$('retry').addEventListener('click', () => run($('retry'), () => call('retry')));
$('options').addEventListener('click', () => chrome.runtime.openOptionsPage());
refresh();
setInterval(refresh, 1000);
