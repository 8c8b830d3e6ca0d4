// node --test static/js/tests/ : re-reads asked for in a burst fold into one more (api.js coalesced).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { coalesced } from '../api.js';

test('calls while a read runs fold into one more read after it, which they all get', async () => {
  const started = [];
  const releases = [];
  const read = coalesced(() => {
    started.push(started.length + 1);
    return new Promise((resolve) => releases.push(() => resolve(started.length)));
  });
  const first = read();
  const [second, third, fourth] = [read(), read(), read()];
  assert.equal(second, third);
  assert.equal(third, fourth);
  assert.deepEqual(started, [1]); // the burst waits for the read in flight
  releases[0]();
  assert.equal(await first, 1);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(started, [1, 2]); // then one more read, not three
  releases[1]();
  assert.equal(await second, 2);
  const later = read();
  assert.deepEqual(started, [1, 2, 3]); // quiet again: a new call reads at once
  releases[2]();
  assert.equal(await later, 3);
});

test('a read that fails does not stop the next one', async () => {
  let calls = 0;
  const read = coalesced(async () => {
    calls += 1;
    if (calls === 1) throw new Error('offline');
    return calls;
  });
  const first = read();
  const second = read();
  await assert.rejects(first, /offline/);
  assert.equal(await second, 2);
});
