// node --test static/js/tests/ : the frames of operations that end before the answer that queued them.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { EarlyFrames } from '../operations.js';

test('a frame that came before its answer is taken once, the latest one', () => {
  const early = new EarlyFrames();
  early.remember({ id: 'a', status: 'running' });
  early.remember({ id: 'a', status: 'succeeded' });
  assert.equal(early.take('a').status, 'succeeded');
  assert.equal(early.take('a'), null);
  assert.equal(early.take('never'), null);
});

test('only the latest frames are kept', () => {
  const early = new EarlyFrames(2);
  for (const id of ['a', 'b', 'c']) early.remember({ id, status: 'succeeded' });
  assert.equal(early.take('a'), null);
  assert.ok(early.take('b') && early.take('c'));
});
