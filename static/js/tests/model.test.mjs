// node --test static/js/tests/ : the page's model (frames, indexes, folding, search) without a browser.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { FOLD_ABOVE, ids, TopologyModel } from '../model.js';

/** A host state with bridge br0 in the host namespace and `count` endpoints on it. */
function hostState(count, { netnsKind = 'host' } = {}) {
  const state = { namespaces: {}, links: {}, addresses: {}, routes: {}, neighbours: {}, fdb: {} };
  const ns = (name, kind) => (state.namespaces[name] = { name, inode: Object.keys(state.namespaces).length + 1, kind });
  const link = (netns, index, name, extra = {}) =>
    (state.links[`${netns}|${index}`] = { netns, index, name, kind: null, mtu: 1500, mac: null, up: true, state: 'up', master: null,
      alias: null, peer: null, vxlan: null, ...extra });
  ns('host', netnsKind);
  link('host', 1, 'lo');
  link('host', 2, 'br0', { kind: 'bridge' });
  for (let i = 0; i < count; i += 1) {
    const name = `ep${i}`;
    ns(name, 'named');
    link(name, 1, 'lo', { alias: `switchboard:demo:node:node=web${i}${i === 0 ? ':shared=sidecar' : ''}` });
    link(name, 2, 'eth0', { kind: 'veth', peer: { netns: 'host', index: 10 + i, name: `p${i}` } });
    link('host', 10 + i, `p${i}`, { kind: 'veth', master: 'br0', peer: { netns: name, index: 2, name: 'eth0' },
      alias: `switchboard:demo:veth:node=web${i}:network=front` });
  }
  return state;
}

function loaded(state, host = 'alpha') {
  const model = new TopologyModel();
  model.apply({ type: 'topology.snapshot', host, online: true, seq: 1, state });
  model.takeDirty();
  return model;
}

test(`a network with more than ${FOLD_ABOVE} endpoints folds into one group, with its counts`, () => {
  const state = hostState(FOLD_ABOVE + 1);
  state.links['host|10'].up = false;
  const model = loaded(state);
  const h = model.hosts.alpha;
  const group = ids.group('alpha|host|2');
  assert.equal(h.groups.get(group).size, FOLD_ABOVE + 1);
  assert.deepEqual(h.groupCounts(group), { total: FOLD_ABOVE + 1, down: 1 });
  assert.equal(h.linkVisible('alpha|ep3|2'), false);
  assert.equal(h.representative('alpha|ep3|2'), group);
});

test(`at ${FOLD_ABOVE} endpoints nothing folds, and losing the 25th unfolds every endpoint`, () => {
  assert.equal(loaded(hostState(FOLD_ABOVE)).hosts.alpha.groups.size, 0);
  const model = loaded(hostState(FOLD_ABOVE + 1));
  const h = model.hosts.alpha;
  const gone = FOLD_ABOVE;
  model.apply({ type: 'topology.delta', host: 'alpha', seq: 2, events: [
    { kind: 'links', action: 'del', key: `ep${gone}|2` },
    { kind: 'links', action: 'del', key: `host|${10 + gone}` },
  ] });
  const dirty = model.takeDirty();
  assert.equal(h.groups.size, 0);
  assert.equal(h.folded.size, 0);
  assert.ok(dirty.has('alpha|ns|ep0') && dirty.has('alpha|ep0|2'), 'every endpoint is redrawn');
});

test('opening a folded network shows its endpoints; grouping off never folds', () => {
  const model = loaded(hostState(30));
  const h = model.hosts.alpha;
  model.setExpanded(h, 'alpha|host|2', true);
  model.takeDirty();
  assert.equal(h.folded.size, 0);
  model.setExpanded(h, 'alpha|host|2', false);
  model.takeDirty();
  assert.equal(h.folded.size, 30);
  model.setGrouping(false);
  model.takeDirty();
  assert.equal(h.folded.size, 0);
});

test('bridges of the host namespace and their ports float; those of other namespaces stay in their box', () => {
  const h = loaded(hostState(2)).hosts.alpha;
  assert.equal(h.floats(h.links.get('alpha|host|2')), true);
  assert.equal(h.floats(h.links.get('alpha|host|10')), true);
  assert.equal(h.floats(h.links.get('alpha|host|1')), false);
  assert.equal(h.floats(h.links.get('alpha|ep0|2')), false);
  const lab = loaded(hostState(2, { netnsKind: 'named' })).hosts.alpha;
  assert.equal(lab.floats(lab.links.get('alpha|host|2')), false);
});

test("search finds a node's namespace by the node's name, and a container: node sharing it", () => {
  const model = loaded(hostState(3));
  assert.deepEqual([...model.searchMatches('web1')].sort(), ['alpha|host|11', 'alpha|ns|ep1']);
  assert.deepEqual([...model.searchMatches('sidecar')], ['alpha|ns|ep0']);
  assert.deepEqual(model.hosts.alpha.nodeNames('ep0'), new Set(['web0', 'sidecar']));
  // Folded: the group stands for them.
  const folded = loaded(hostState(30));
  assert.deepEqual([...folded.searchMatches('sidecar')], [ids.group('alpha|host|2')]);
});

test('a delta after a gap asks for a resync once; an old delta is skipped', () => {
  const model = loaded(hostState(1));
  const delta = (seq) => ({ type: 'topology.delta', host: 'alpha', seq, events: [] });
  assert.equal(model.apply(delta(2)), false);
  assert.equal(model.apply(delta(5)), true);
  assert.equal(model.apply(delta(7)), false, 'one resync outstanding');
  assert.equal(model.apply(delta(3)), false);
  assert.equal(model.hosts.alpha.seq, 7);
});

test("a desired topology's status reaches its interfaces and namespaces, also on hosts that come later", () => {
  const model = new TopologyModel();
  model.setDesired([{ host: 'alpha', name: 'demo', status: 'drifted', status_message: '- veth demo-web0-front' }]);
  model.apply({ type: 'topology.snapshot', host: 'alpha', online: true, seq: 1, state: hostState(2) });
  model.takeDirty();
  const h = model.hosts.alpha;
  assert.deepEqual(h.desiredOf(h.links.get('alpha|host|10')), { topology: 'demo', status: 'drifted', message: '- veth demo-web0-front' });
  assert.equal(h.nsDesired('ep1').status, 'drifted');
  assert.equal(h.desiredOf(h.links.get('alpha|host|2')), null); // br0 is not one of ours
  model.setDesired([{ host: 'alpha', name: 'demo', status: 'ready', status_message: '' }]);
  const dirty = model.takeDirty();
  assert.ok(dirty.has('alpha|host|10') && dirty.has('alpha|ns|ep1'), 'what changed status is redrawn');
  assert.equal(h.nsDesired('ep0').status, 'ready');
});
