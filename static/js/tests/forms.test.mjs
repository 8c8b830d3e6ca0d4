// node --test static/js/tests/ : where an API error is shown in a form (forms.js), and which
// desired object a graph element stands for (graph-menu.js), without a browser.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { fieldOf, mapErrors } from '../forms.js';
import { desiredTarget } from '../graph-menu.js';
import { TopologyModel } from '../model.js';

const NODE_FORM = ['name', 'mode', 'networks.front', 'networks.front.address', 'networks.back', 'networks.back.address', 'ports'];

test('an error key goes to its field, the field it is inside, or the first field inside it', () => {
  assert.equal(fieldOf('name', NODE_FORM), 'name');
  assert.equal(fieldOf('networks.front.address', NODE_FORM), 'networks.front.address');
  assert.equal(fieldOf('ports[1]', NODE_FORM), 'ports');
  assert.equal(fieldOf('networks.back.mtu', NODE_FORM), 'networks.back');
  assert.equal(fieldOf('networks', NODE_FORM), 'networks.front');
  assert.equal(fieldOf('version', NODE_FORM), null);
  assert.equal(fieldOf('port', NODE_FORM), null); // a prefix of a name is not that field
});

test('a 400 puts each message under its field and unknown keys at the top, named', () => {
  const data = {
    error: 'InvalidInput',
    message: 'the node is not valid',
    fields: { name: ['name taken'], 'ports[0]': ['bad port', 'out of range'], version: ['must be a number'] },
  };
  const { fields, general } = mapErrors(400, data, NODE_FORM);
  assert.deepEqual(Object.fromEntries(fields), { name: ['name taken'], ports: ['bad port', 'out of range'] });
  assert.deepEqual(general, ['version: must be a number']);
});

test('nested field errors are flattened to their path', () => {
  const { fields } = mapErrors(400, { fields: { networks: { back: { address: ['not in 198.18.2.0/24'] } } } }, NODE_FORM);
  assert.deepEqual(Object.fromEntries(fields), { 'networks.back.address': ['not in 198.18.2.0/24'] });
});

test('a 409 goes under the field it names, else at the top', () => {
  const message = '198.18.1.10 is taken by web1';
  const taken = mapErrors(409, { error: 'Conflict', message, fields: { 'networks.front.address': [message] } }, NODE_FORM);
  assert.deepEqual(Object.fromEntries(taken.fields), { 'networks.front.address': [message] });
  assert.deepEqual(taken.general, []);
  const stale = mapErrors(409, { error: 'Conflict', message: 'version 3 is not the latest (4)', fields: {} }, NODE_FORM);
  assert.equal(stale.fields.size, 0);
  assert.deepEqual(stale.general, ['version 3 is not the latest (4)']);
});

test('a refusal or an answer that is not JSON is said at the top', () => {
  assert.deepEqual(mapErrors(403, { detail: 'no' }, NODE_FORM).general, ['Only operators may change topologies.']);
  assert.deepEqual(mapErrors(502, '', NODE_FORM).general, ['The server answered 502.']);
  assert.deepEqual(mapErrors(500, 'Server Error', NODE_FORM).general, ['Server Error']);
});

/** A host with a desired topology's bridge and node, and one bridge and namespace made by hand. */
function host() {
  const state = { namespaces: {}, links: {}, addresses: {}, routes: {}, neighbours: {}, fdb: {} };
  const ns = (name, kind) => (state.namespaces[name] = { name, inode: Object.keys(state.namespaces).length + 1, kind });
  const link = (netns, index, name, extra = {}) =>
    (state.links[`${netns}|${index}`] = { netns, index, name, kind: null, mtu: 1500, mac: null, up: true, state: 'up', master: null,
      alias: null, peer: null, vxlan: null, ...extra });
  ns('host', 'host');
  ns('demo-web1', 'named');
  ns('byhand', 'named');
  link('host', 2, 'demo-front', { kind: 'bridge', alias: 'switchboard:demo:bridge:network=front' });
  link('host', 3, 'br-hand', { kind: 'bridge' });
  link('host', 4, 'old-front', { kind: 'bridge', alias: 'switchboard:old:bridge:network=front' }); // not desired here
  link('demo-web1', 1, 'lo', { alias: 'switchboard:demo:node:node=web1' });
  // netcore marks the host side of a node's veths (demo-web1-front), not the node side (eth0).
  link('demo-web1', 2, 'eth0', { kind: 'veth', peer: { netns: 'host', index: 5, name: 'demo-web1-front' } });
  link('demo-web1', 3, 'eth1', { kind: 'veth', peer: { netns: 'host', index: 6, name: 'demo-web1-back' } });
  link('host', 5, 'demo-web1-front', { kind: 'veth', master: 'demo-front', alias: 'switchboard:demo:veth:network=front:node=web1' });
  link('host', 6, 'demo-web1-back', { kind: 'veth', alias: 'switchboard:demo:veth:network=back:node=web1' });
  link('byhand', 1, 'lo');
  const model = new TopologyModel();
  model.apply({ type: 'topology.snapshot', host: 'alpha', online: true, seq: 1, state });
  model.setDesired([{ host: 'alpha', name: 'demo', status: 'ready' }]);
  return model.hosts.alpha;
}

test('a desired topology\'s bridge and node namespace map to its network and node; the rest is read-only', () => {
  const h = host();
  assert.deepEqual(desiredTarget(h, { type: 'link', id: 'alpha|host|2', netns: 'host' }), { kind: 'network', topology: 'demo', network: 'front' });
  assert.deepEqual(desiredTarget(h, { type: 'group', id: 'alpha|host|2|endpoints', bridge: 'alpha|host|2' }), {
    kind: 'network', topology: 'demo', network: 'front',
  });
  const web1 = { kind: 'node', topology: 'demo', node: 'web1', networks: ['back', 'front'] };
  assert.deepEqual(desiredTarget(h, { type: 'namespace', id: 'alpha|ns|demo-web1', netns: 'demo-web1' }), web1);
  assert.deepEqual(desiredTarget(h, { type: 'link', id: 'alpha|demo-web1|2', netns: 'demo-web1' }), web1);
  assert.equal(desiredTarget(h, { type: 'link', id: 'alpha|host|3', netns: 'host' }), null); // made by hand
  assert.equal(desiredTarget(h, { type: 'link', id: 'alpha|host|4', netns: 'host' }), null); // no desired topology "old"
  assert.equal(desiredTarget(h, { type: 'namespace', id: 'alpha|ns|byhand', netns: 'byhand' }), null);
  assert.equal(desiredTarget(h, { type: 'host', id: 'alpha' }), null);
});
