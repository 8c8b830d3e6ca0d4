// node --test static/js/tests/ : the overlay checks the topology page keeps (overlay.js), with a fake API and timers.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { OverlayWatch, spanningTopologies } from '../overlay.js';

const SPANNING = [
  { name: 'ov', host: 'lab1', span: { home: 'lab1', hosts: ['lab1', 'lab2'] } },
  { name: 'ov', host: 'lab2', span: { home: 'lab1', hosts: ['lab1', 'lab2'] } }, // lab2's share
  { name: 'demo', host: 'lab1', span: null },
];
const NETWORKS = { results: [{ name: 'mesh', driver: 'vxlan' }, { name: 'front', driver: 'bridge' }] };
const FINDING = { host: 'lab2', kind: 'MISSING_FLOOD', object: 'fdb 00:00:00:00:00:00 dst 198.18.254.11 on ov-mesh.vx' };

/** An API answering from `answers` (url -> data), recording every URL asked; `hold` keeps answers back. */
function fakeApi(answers) {
  const api = async (url) => {
    api.urls.push(url);
    if (api.hold) await api.hold;
    const path = url.split('?')[0];
    return path in answers ? { status: 200, data: answers[path] } : { status: 404, data: {} };
  };
  api.urls = [];
  return api;
}

function fakeTimers() {
  const timers = { pending: [], setTimeout: (fn, ms) => timers.pending.push({ fn, ms }), clearTimeout: () => {} };
  timers.fire = () => timers.pending.splice(0).forEach(({ fn }) => fn());
  return timers;
}

function watch(answers) {
  const api = fakeApi(answers);
  const timers = fakeTimers();
  const seen = [];
  const w = new OverlayWatch({ api, networksUrl: '/api/v1/networks/', timers, onAnswer: (t, n, a) => seen.push([t, n, a]) });
  return { w, api, timers, seen };
}

test('topologies spanning hosts are named by their home, once', () => {
  assert.deepEqual([...spanningTopologies(SPANNING)], [['ov', 'lab1']]);
});

test('a spanning topology seen first is read: its vxlan networks, then each overlay check', async () => {
  const answer = { consistent: true, findings: [], hosts: [] };
  const { w, api, timers, seen } = watch({ '/api/v1/networks/': NETWORKS, '/api/v1/networks/ov.mesh/overlay/': answer });
  await w.setTopologies(SPANNING);
  assert.deepEqual(api.urls, ['/api/v1/networks/?topology=ov&host=lab1&page_size=1000', '/api/v1/networks/ov.mesh/overlay/?host=lab1']);
  assert.deepEqual(seen, [['ov', 'mesh', answer]]);
  assert.equal(timers.pending.length, 0, 'consistent: no polling');
  await w.setTopologies(SPANNING);
  assert.equal(api.urls.length, 2, 'a topology already watched is read on refresh, not on every list');
  await w.refresh('demo');
  assert.equal(api.urls.length, 2, 'a topology on one host has no overlay');
  await w.setTopologies([]);
  assert.deepEqual(seen.at(-1), ['ov', 'mesh', null], 'gone with its topology');
});

test('refreshes asked while a read runs fold into one more read', async () => {
  const { w, api } = watch({ '/api/v1/networks/': NETWORKS, '/api/v1/networks/ov.mesh/overlay/': { consistent: true, findings: [] } });
  await w.setTopologies(SPANNING);
  api.urls = [];
  let release;
  api.hold = new Promise((resolve) => (release = resolve));
  const burst = [w.refresh('ov'), w.refresh('ov'), w.refresh('ov'), w.refresh('ov')];
  release();
  await Promise.all(burst);
  assert.equal(api.urls.filter((url) => url.includes('/overlay/')).length, 2);
});

test('findings are read again every 5 s until the overlay is consistent', async () => {
  const answers = { '/api/v1/networks/': NETWORKS, '/api/v1/networks/ov.mesh/overlay/': { consistent: false, findings: [FINDING] } };
  const { w, api, timers, seen } = watch(answers);
  await w.setTopologies(SPANNING);
  assert.deepEqual(timers.pending.map((t) => t.ms), [5000]);
  w.schedulePoll();
  assert.equal(timers.pending.length, 1, 'one timer at a time');
  answers['/api/v1/networks/ov.mesh/overlay/'] = { consistent: true, findings: [] };
  timers.fire();
  await w.refresh('ov'); // joins the read the timer started
  assert.equal(seen.at(-1)[2].consistent, true);
  assert.equal(timers.pending.length, 0);
  assert.ok(api.urls.length >= 4);
});

test('a network no longer vxlan (or gone) drops its answer; a failed read keeps the last', async () => {
  const answers = { '/api/v1/networks/': NETWORKS, '/api/v1/networks/ov.mesh/overlay/': { consistent: true, findings: [] } };
  const { w, seen } = watch(answers);
  await w.setTopologies(SPANNING);
  delete answers['/api/v1/networks/ov.mesh/overlay/'];
  await w.refresh('ov');
  assert.equal(seen.length, 1, 'a 404 changes nothing');
  answers['/api/v1/networks/'] = { results: [] };
  await w.refresh('ov');
  assert.deepEqual(seen.at(-1), ['ov', 'mesh', null]);
  assert.deepEqual(w.answers(), []);
});
