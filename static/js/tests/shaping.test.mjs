import assert from 'node:assert/strict';
import { test } from 'node:test';

import { rateText, shapingText } from '../links.js';
import { shapingBody, shapingFields, shapingUrl } from '../shaping.js';

test('a shaping in a few words, as the graph writes it on the edge', () => {
  assert.equal(shapingText(null), null);
  assert.equal(shapingText({ kind: 'tbf', rate: 10_000_000, burst: 32768 }), 'tbf 10 Mbit/s');
  assert.equal(shapingText({ kind: 'netem', rate: null, delay_us: 20000, jitter_us: 5000, loss_ppm: 5000 }), 'netem 20 ± 5 ms 0.5% loss');
  assert.equal(shapingText({ kind: 'htb', rate: null }), 'htb');
  assert.equal(rateText(1_500_000_000), '1.5 Gbit/s');
  assert.equal(rateText(800), '800 bit/s');
});

test('the form sends only what was typed, queue_ms as a number', () => {
  assert.deepEqual(shapingBody({ rate: ' 10mbit ', burst: '', queue_ms: '20', delay: '', jitter: '', loss: '' }), { rate: '10mbit', queue_ms: 20 });
  assert.deepEqual(shapingBody({ delay: '20ms', loss: '0.5', queue_ms: 'x' }), { delay: '20ms', loss: '0.5', queue_ms: 'x' });
});

test('the form starts from the shaping the link has', () => {
  const fields = Object.fromEntries(shapingFields({ kind: 'tbf', rate: 10_000_000, burst: 32768 }).map((f) => [f.name, f.value]));
  assert.equal(fields.rate, '10000000');
  assert.equal(fields.burst, '32768');
  const netem = Object.fromEntries(shapingFields({ kind: 'netem', delay_us: 20000, jitter_us: 0, loss_ppm: 5000 }).map((f) => [f.name, f.value]));
  assert.deepEqual([netem.delay, netem.jitter, netem.loss, netem.burst], ['20ms', '', '0.5', '']);
});

test('names with colons or slashes stay one path segment each', () => {
  assert.equal(shapingUrl('alpha', 'docker:abc', 'eth0'), '/api/v1/topology/shaping/alpha/docker%3Aabc/eth0/');
});
