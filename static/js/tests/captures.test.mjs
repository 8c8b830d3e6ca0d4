// The captures pages' pure parts (static/js/captures-model.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { RowWindow, captureRequest, hexLines, nodeLabel, progress, rowTime, sizeText, splitNames, statusText } from '../captures-model.js';

const row = (number) => ({ number, time: 1700000000 + number, interface: 'eth0', source: 'a', destination: 'b', protocol: 'UDP', length: 60, info: '' });

test('the form becomes the API request: ticked and typed interfaces once each, numbers as numbers', () => {
  const body = captureRequest({ host: 'h1', namespace: ' demo-web1 ', checked: ['eth0'], typed: 'eth1, eth0  veth2', filter: ' udp ', count: '100', duration: '2.5' });
  assert.deepEqual(body, { host: 'h1', namespace: 'demo-web1', interfaces: ['eth0', 'eth1', 'veth2'], filter: 'udp', count: 100, duration: 2.5 });
});

test('a number field that is not a number is sent as typed, for the API to name', () => {
  assert.equal(captureRequest({ host: 'h1', namespace: 'host', count: 'ten', duration: '' }).count, 'ten');
  assert.deepEqual(splitNames(''), []);
});

test('the row window appends only rows after the last one, and drops the oldest past its limit', () => {
  const window = new RowWindow(3);
  assert.deepEqual(window.add([row(1), row(2)]), { added: [row(1), row(2)], removed: 0 });
  // a repeat (sent on connect and live) is not drawn twice; order is by frame number
  assert.deepEqual(window.add([row(2), row(4), row(3)]), { added: [row(3), row(4)], removed: 1 });
  assert.equal(window.size, 3);
  assert.deepEqual(window.add([5, 6, 7, 8, 9].map(row)), { added: [7, 8, 9].map(row), removed: 3 });
  assert.equal(window.size, 3);
  assert.equal(window.last, 9);
  assert.equal(window.note(3), '');
  assert.equal(window.note(9), 'Showing the last 3 of 9 rows kept; the pcap has every packet.');
});

test('progress says packets of the count and the time left while running, totals once ended', () => {
  const started = '2026-01-01T00:00:00Z';
  const running = { status: 'running', started, count: 1000, duration: 60, packets: 120, dropped: 0, bytes: 0 };
  assert.deepEqual(progress(running, Date.parse(started) + 18_000), { value: 120, max: 1000, text: '120 of 1000 packets · 42 s left' });
  assert.equal(progress({ ...running, packets: 5000 }, Date.parse(started) + 90_000).value, 1000);
  assert.match(progress({ ...running }, Date.parse(started) + 90_000).text, /0 s left$/);
  const done = { status: 'done', reason: 'count', count: 3, duration: 60, packets: 3, dropped: 1, bytes: 2150 };
  assert.equal(progress(done).text, '3 packets, 1 dropped · 2.1 KiB');
  assert.equal(statusText(done), 'Done: reached its packet count');
  assert.equal(statusText({ status: 'stopped', reason: 'stopped' }), 'Stopped');
  assert.equal(progress({ status: 'pending', count: 3, packets: 0 }).text, 'waiting for the agent to start it');
});

test('sizes, times, decode labels and hex lines read as people read them', () => {
  assert.equal(sizeText(512), '512 B');
  assert.equal(sizeText(3.5 * 2 ** 20), '3.5 MiB');
  assert.equal(rowTime(1796043162.291), '12:52:42.291');
  assert.equal(nodeLabel({ name: 'ip.src', value: '198.18.0.1' }), 'ip.src: 198.18.0.1');
  assert.equal(nodeLabel({ name: 'ip', children: [] }), 'ip');
  assert.deepEqual(hexLines('00'.repeat(17)), [`0000  ${Array(16).fill('00').join(' ')}`, '0010  00']);
});
