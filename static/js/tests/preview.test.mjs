// node --test static/js/tests/ : the connectivity preview's lines and rendering, without a browser.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { previewLines, previewSummary, renderPreview } from '../preview.js';

const NONE = { gained: 0, lost: 0, interrupted: 0, recreated: 0 };

function answer(extra = {}) {
  return { gained: [], lost: [], interrupted: [], recreated: [], counts: { ...NONE }, pairs_before: 2, pairs_after: 2,
    applied: true, host_forwards: false, ...extra };
}

const L3 = { source: 'a', target: 'c', network: 'blue', address: '198.18.7.2', how: 'L3', path: ['a', '(host)', 'c', '(host)', 'a'] };
const LOST = { source: 'a', target: 'b', network: 'red', address: '198.18.6.3', how: null, path: [],
  reason: 'the node or its network is removed' };

test('gained and lost pairs read as sentences with their sign, the route of an L3 one, and why one is lost', () => {
  const lines = previewLines(answer({ gained: [L3], lost: [LOST], counts: { ...NONE, gained: 1, lost: 1 } }));
  assert.deepEqual(lines, [
    { kind: 'gained', text: '+ a → c 198.18.7.2 (blue) becomes reachable (L3, routed: a → (host) → c → (host) → a)' },
    { kind: 'lost', text: '− a → b 198.18.6.3 (red) is no longer reachable: the node or its network is removed' },
  ]);
});

test('no gained or lost pair says so, and still lists what the change interrupts and recreates', () => {
  const data = answer({
    interrupted: [{ node: 'a', why: 'address 198.18.6.2 → 198.18.6.9 on red' }],
    recreated: [{ kind: 'veth', node: 'a', network: 'red', why: 'eth1 becomes eth0' }, { kind: 'vxlan', network: 'over', why: 'its VXLAN options change' }],
    counts: { ...NONE, interrupted: 1, recreated: 2 },
  });
  assert.deepEqual(previewLines(data).map((line) => line.text), [
    'No change in who reaches whom.',
    '! a: live connections break (address 198.18.6.2 → 198.18.6.9 on red)',
    '~ veth of a on red is recreated (eth1 becomes eth0)',
    '~ vxlan of over is recreated (its VXLAN options change)',
  ]);
  assert.deepEqual(previewLines(answer()), [{ kind: 'same', text: 'No change in who reaches whom.' }]);
});

test('lists the server cut short say how many more there are', () => {
  const lines = previewLines(answer({ gained: [L3], counts: { ...NONE, gained: 4 } }));
  assert.equal(lines.at(-1).text, '  … and 3 pairs more');
  assert.equal(lines.at(-1).kind, 'gained');
});

test('the summary counts pairs before and after and names what it assumes of the host', () => {
  assert.equal(previewSummary(answer({ pairs_before: 1, pairs_after: 6, host_forwards: true })),
    '1 pair of nodes reachable now; 6 pairs after applying.');
  assert.match(previewSummary(answer({ applied: false, pairs_before: 0 })),
    /^Nothing applied yet; 2 pairs after applying \(taking the host not to route between networks/);
});

function fakeContainer() {
  const parts = {
    status: { textContent: '' },
    lines: { children: [], replaceChildren(...nodes) { this.children = nodes; } },
  };
  return { parts, querySelector: (selector) => parts[selector.match(/data-preview="(\w+)"/)[1]] };
}

test('render puts each line in a span marked by its kind, and an error in the status line', () => {
  const created = [];
  globalThis.document = {
    createElement(tag) {
      const node = { tag, className: '', text: '', setAttribute() {}, append(child) { this.text += child; } };
      created.push(node);
      return node;
    },
  };
  try {
    const container = fakeContainer();
    renderPreview(container, { status: 200, data: answer({ gained: [L3], lost: [LOST], counts: { ...NONE, gained: 1, lost: 1 } }) });
    assert.equal(container.parts.status.textContent, '2 pairs of nodes reachable now; 2 pairs after applying'
      + ' (taking the host not to route between networks: netcore never turns IP forwarding on).');
    assert.deepEqual(container.parts.lines.children.map((node) => [node.tag, node.className, node.text.slice(0, 12)]), [
      ['span', 'plan-add', '+ a → c 198.'],
      ['span', 'plan-remove', '− a → b 198.'],
    ]);
    renderPreview(container, { status: 409, data: { message: 'topology pv has about 9 pairs' } });
    assert.equal(container.parts.status.textContent, 'No connectivity preview: topology pv has about 9 pairs');
    assert.deepEqual(container.parts.lines.children, []);
  } finally {
    delete globalThis.document;
  }
});
