// node --test static/js/tests/ : the page's model (frames, indexes, folding, search) without a browser.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { FOLD_ABOVE, ids, serviceStatus, TopologyModel } from '../model.js';

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

// --- overlays: tunnels between the VXLAN devices of hosts (deriveTunnels) -------------------------

const VTEP = (i) => `198.18.254.${10 + i}`;
const MAC = (i) => `02:42:c6:12:64:0${i}`;
const ZERO = '00:00:00:00:00:00';
const DEVICE = (i) => `lab${i}|host|4`;

/**
 * Host lab<i> of a network `mesh` spanning hosts `peers`: bridge ov-mesh with VXLAN device
 * ov-mesh.vx (host|4, VTEP 198.18.254.1i) and one endpoint ov-n<i> (MAC 02:42:c6:12:64:0i); for every
 * other host, a flood entry and a per-MAC entry to its VTEP and a neighbour entry for its endpoint.
 */
function meshState(i, { peers = [1, 2, 3], vni = 5000 } = {}) {
  const state = { namespaces: {}, links: {}, addresses: {}, routes: {}, neighbours: {}, fdb: {} };
  const link = (netns, index, name, extra = {}) =>
    (state.links[`${netns}|${index}`] = { netns, index, name, kind: null, mtu: 1500, mac: null, up: true, state: 'up', master: null,
      alias: null, peer: null, vxlan: null, ...extra });
  state.namespaces.host = { name: 'host', inode: 1, kind: 'host' };
  state.namespaces[`ov-n${i}`] = { name: `ov-n${i}`, inode: 2, kind: 'named' };
  link('host', 1, 'lo');
  link('host', 2, 'eth0');
  link('host', 3, 'ov-mesh', { kind: 'bridge', alias: 'switchboard:ov:bridge:network=mesh' });
  link('host', 4, 'ov-mesh.vx', { kind: 'vxlan', master: 'ov-mesh', mtu: 1450, alias: 'switchboard:ov:vxlan:network=mesh',
    vxlan: { vni, local: VTEP(i), group: null, remote: null, dstport: 4789, learning: false, underlay: 2 } });
  link('host', 5, `ov-n${i}-mesh`, { kind: 'veth', master: 'ov-mesh', peer: { netns: `ov-n${i}`, index: 2, name: 'eth0' } });
  link(`ov-n${i}`, 1, 'lo');
  link(`ov-n${i}`, 2, 'eth0', { kind: 'veth', mac: MAC(i), peer: { netns: 'host', index: 5, name: `ov-n${i}-mesh` } });
  for (const j of peers) {
    if (j === i) continue;
    Object.assign(state.fdb, fdbEntry(VTEP(j), ZERO), fdbEntry(VTEP(j), MAC(j)));
    state.neighbours[`host|4|198.18.100.${j}`] = { netns: 'host', ifindex: 4, ifname: 'ov-mesh.vx', address: `198.18.100.${j}`, mac: MAC(j), state: 'permanent' };
  }
  return state;
}

/** One FDB entry of ov-mesh.vx (host|4), keyed as in the state. */
function fdbEntry(dst, mac, extra = {}) {
  return { [`host|4|${mac}|${dst}`]: { netns: 'host', ifindex: 4, ifname: 'ov-mesh.vx', master: null, mac, dst, vlan: null, vni: null,
    state: 'permanent', self_entry: true, ...extra } };
}

function mesh(hosts, options = {}) {
  const model = new TopologyModel();
  for (const i of hosts) {
    model.apply({ type: 'topology.snapshot', host: `lab${i}`, online: true, seq: 1, state: meshState(i, { peers: hosts, ...(options[i] ?? {}) }) });
  }
  return model;
}

/** Events deleting every FDB entry of lab<i>'s device that points at lab<j>'s VTEP. */
function dropEntries(model, i, j) {
  return Object.entries(model.hosts[`lab${i}`].state.fdb)
    .filter(([, f]) => f.dst === VTEP(j))
    .map(([key]) => ({ kind: 'fdb', action: 'del', key }));
}

test('two hosts: one tunnel between their VXLAN devices, whatever the number of entries, labelled with the VNI', () => {
  const model = mesh([1, 2]);
  const dirty = model.takeDirty();
  const id = `tunnel:${DEVICE(1)}~${DEVICE(2)}`;
  assert.deepEqual([...model.tunnels.keys()], [id]);
  assert.deepEqual(model.tunnels.get(id), {
    id, source: DEVICE(1), target: DEVICE(2), sourceHost: 'lab1', targetHost: 'lab2', vni: 5000,
    forward: true, backward: true, unknown: false, gap: 1,
  });
  assert.equal(dirty.get(id).type, 'tunnel');
  assert.equal(dirty.get(id).tunnel.id, id);
  assert.deepEqual(model.vtepOwners(VTEP(2)), ['lab2']);
});

test('three hosts: a tunnel per pair; the one past a host in between is two hosts apart', () => {
  const model = mesh([1, 2, 3]);
  model.takeDirty();
  assert.deepEqual([...model.tunnels.keys()].sort(), [
    `tunnel:${DEVICE(1)}~${DEVICE(2)}`,
    `tunnel:${DEVICE(1)}~${DEVICE(3)}`,
    `tunnel:${DEVICE(2)}~${DEVICE(3)}`,
  ]);
  assert.equal(model.tunnels.get(`tunnel:${DEVICE(1)}~${DEVICE(3)}`).gap, 2);
  assert.equal(Object.values(model.hosts).reduce((n, h) => n + h.vteps.size, 0), 0, 'no unknown VTEP');
});

test('an entry to a VTEP no host has is a tunnel to an unknown VTEP node on that host', () => {
  const model = mesh([1, 2]);
  model.takeDirty();
  const [key, entry] = Object.entries(fdbEntry('198.18.254.99', '02:42:c6:12:64:99'))[0];
  model.apply({ type: 'topology.delta', host: 'lab1', seq: 2, events: [{ kind: 'fdb', action: 'set', key, object: entry }] });
  const dirty = model.takeDirty();
  const vtep = ids.vtep('lab1', '198.18.254.99');
  const id = `tunnel:${DEVICE(1)}~${vtep}`;
  assert.deepEqual(model.hosts.lab1.vteps.get(vtep), { id: vtep, host: 'lab1', address: '198.18.254.99', device: DEVICE(1), bridge: 'lab1|host|3' });
  assert.equal(model.tunnels.get(id).unknown, true);
  assert.ok(dirty.has(vtep) && dirty.get(vtep).type === 'vtep', 'the VTEP node is drawn');
  assert.ok(dirty.has(id) && !dirty.has(`tunnel:${DEVICE(1)}~${DEVICE(2)}`), 'only what changed is redrawn');
  assert.deepEqual(model.vtepOwners('198.18.254.99'), []);
  // Gone with its entry.
  model.apply({ type: 'topology.delta', host: 'lab1', seq: 3, events: [{ kind: 'fdb', action: 'del', key }] });
  const after = model.takeDirty();
  assert.equal(after.get(id).tunnel, null);
  assert.ok(after.has(vtep) && !model.hosts.lab1.vteps.has(vtep));
});

test('deltas: one side losing its entries leaves a one-way tunnel, both sides remove it, an entry brings it back', () => {
  const model = mesh([1, 2, 3]);
  model.takeDirty();
  const id = `tunnel:${DEVICE(1)}~${DEVICE(2)}`;
  model.apply({ type: 'topology.delta', host: 'lab1', seq: 2, events: dropEntries(model, 1, 2) });
  let dirty = model.takeDirty();
  assert.equal(model.tunnels.get(id).forward, false);
  assert.equal(model.tunnels.get(id).backward, true);
  assert.deepEqual([...dirty.keys()], [id], 'nothing else is redrawn');

  const lab2Entries = dropEntries(model, 2, 1);
  model.apply({ type: 'topology.delta', host: 'lab2', seq: 2, events: lab2Entries });
  dirty = model.takeDirty();
  assert.equal(model.tunnels.has(id), false);
  assert.equal(dirty.get(id).tunnel, null);
  assert.equal(model.tunnels.size, 2, 'the other pairs keep theirs');

  const [key, entry] = Object.entries(fdbEntry(VTEP(1), ZERO))[0];
  model.apply({ type: 'topology.delta', host: 'lab2', seq: 3, events: [{ kind: 'fdb', action: 'set', key, object: entry }] });
  dirty = model.takeDirty();
  assert.equal(dirty.get(id).tunnel.backward, true);
  assert.equal(dirty.get(id).tunnel.forward, false);
});

test('devices of different VNIs have no tunnel, and no unknown VTEP either', () => {
  const model = mesh([1, 2], { 2: { vni: 5001 } });
  model.takeDirty();
  assert.equal(model.tunnels.size, 0);
  assert.equal(model.hosts.lab1.vteps.size + model.hosts.lab2.vteps.size, 0);
  // An entry with its own VNI (the other device's) makes the tunnel.
  const [key, entry] = Object.entries(fdbEntry(VTEP(2), ZERO, { vni: 5001 }))[0];
  model.apply({ type: 'topology.delta', host: 'lab1', seq: 2, events: [{ kind: 'fdb', action: 'set', key, object: entry }] });
  model.takeDirty();
  assert.deepEqual([...model.tunnels.keys()], [`tunnel:${DEVICE(1)}~${DEVICE(2)}`]);
});

test('a multicast group entry and a dst of the device itself are no tunnels', () => {
  const model = new TopologyModel();
  const state = meshState(1, { peers: [1] });
  Object.assign(state.fdb, fdbEntry('239.1.1.1', ZERO), fdbEntry(VTEP(1), ZERO));
  model.apply({ type: 'topology.snapshot', host: 'lab1', online: true, seq: 1, state });
  model.takeDirty();
  assert.equal(model.tunnels.size, 0);
  assert.equal(model.hosts.lab1.vteps.size, 0);
});

test("a point-to-point device's entry for its own remote outside the dashboard draws no unknown VTEP", () => {
  const model = new TopologyModel();
  const state = meshState(1, { peers: [1] });
  state.links['host|4'].vxlan.remote = '203.0.113.7';
  Object.assign(state.fdb, fdbEntry('203.0.113.7', ZERO), fdbEntry('203.0.113.8', ZERO));
  model.apply({ type: 'topology.snapshot', host: 'lab1', online: true, seq: 1, state });
  model.takeDirty();
  assert.deepEqual([...model.hosts.lab1.vteps.keys()], [ids.vtep('lab1', '203.0.113.8')], 'another dst still does');
});

test('a device deleted takes its tunnels along; the device drawn again redraws them', () => {
  const model = mesh([1, 2]);
  model.takeDirty();
  const id = `tunnel:${DEVICE(1)}~${DEVICE(2)}`;
  const device = model.hosts.lab2.state.links['host|4'];
  model.apply({ type: 'topology.delta', host: 'lab2', seq: 2, events: [{ kind: 'links', action: 'del', key: 'host|4' }] });
  assert.equal(model.takeDirty().get(id).tunnel, null);
  model.apply({ type: 'topology.delta', host: 'lab2', seq: 3, events: [{ kind: 'links', action: 'set', key: 'host|4', object: device }] });
  assert.equal(model.takeDirty().get(id).tunnel.id, id);
  // A change of the device that leaves its tunnels as they are still redraws them (its node may be new).
  model.apply({ type: 'topology.delta', host: 'lab2', seq: 4, events: [{ kind: 'links', action: 'set', key: 'host|4', object: { ...device, up: false } }] });
  assert.equal(model.takeDirty().get(id).tunnel.id, id);
});

test("selecting a VXLAN device lights its peers on the other hosts and their endpoints", () => {
  const model = mesh([1, 2, 3]);
  model.takeDirty();
  const lit = model.overlayMembers(DEVICE(1));
  for (const i of [1, 2, 3]) {
    for (const id of [DEVICE(i), `lab${i}|host|3`, `lab${i}|host|5`, `lab${i}|ov-n${i}|2`]) assert.ok(lit.has(id), id);
  }
  assert.equal(lit.has('lab2|host|2'), false, "the underlay is not the overlay");
  assert.equal(model.overlayMembers('lab1|host|3'), null, 'a bridge lights nothing');
});

test("an overlay check's findings go to the VXLAN device of their host, or to the host without one", () => {
  const model = mesh([1, 2]);
  model.takeDirty();
  const finding = { host: 'lab2', kind: 'MISSING_FDB', object: `fdb ${MAC(1)} on ov-mesh.vx`, expected: `dst ${VTEP(1)} (lab1)`,
    found: 'none', repairable: true, why: 'no forwarding entry for a remote endpoint\'s MAC' };
  const answer = { topology: 'ov', network: 'mesh', consistent: false, findings: [finding],
    hosts: [{ name: 'lab1', vtep: VTEP(1), state_known: true }, { name: 'lab2', vtep: VTEP(2), state_known: true }, { name: 'lab3', vtep: VTEP(3), state_known: false }] };
  assert.equal(model.setOverlay('ov', 'mesh', answer), true);
  const dirty = model.takeDirty();
  assert.ok(dirty.has(DEVICE(1)) && dirty.has(DEVICE(2)) && dirty.has('lab2'));
  assert.deepEqual(model.hosts.lab2.overlayOf(DEVICE(2)).findings, [finding]);
  assert.deepEqual(model.hosts.lab1.overlayOf(DEVICE(1)).findings, []);
  assert.deepEqual(model.vtepOwners(VTEP(3)), ['lab3'], 'a VTEP the check names');
  assert.equal(model.setOverlay('ov', 'mesh', answer), false, 'the same answer changes nothing');

  // lab2 without its device: the finding is the host's.
  model.apply({ type: 'topology.delta', host: 'lab2', seq: 2, events: [{ kind: 'links', action: 'del', key: 'host|4' }] });
  model.takeDirty();
  assert.deepEqual(model.hosts.lab2.overlayHostFindings(), [{ topology: 'ov', network: 'mesh', ...finding }]);
  assert.equal(model.setOverlay('ov', 'mesh', null), true);
  assert.deepEqual(model.hosts.lab2.overlayHostFindings(), []);
});

/** hostState(1) with Docker: br0 is a Docker network's bridge, ep0 a container's namespace, brX a bridge of no one's. */
function dockerState({ policy = 'DROP', accepted = [] } = {}) {
  const state = hostState(1);
  state.links['ep0|2'].mac = '02:42:c6:12:09:82';
  state.links['host|3'] = { ...state.links['host|2'], index: 3, name: 'brX' };
  state.docker_engine = { engine: { available: true, error: null, version: '20.10', api_version: '1.41', swarm: 'active',
    swarm_manager: true, node_addr: null, forward_policy: policy, bridge_nf_call_iptables: true, accepted_bridges: accepted } };
  const net = (id, name, extra) => ({ id, name, driver: 'bridge', scope: 'local', internal: false, attachable: false, ingress: false,
    ipv6: false, ipam_driver: 'default', subnets: [], options: [], labels: [], bridge: null, netns: null, peers: [], project: null,
    created: '', ...extra });
  state.docker_networks = {
    n1: net('n1', 'front', { bridge: 'br0' }),
    n2: net('n2', 'mesh', { driver: 'overlay', netns: 'docker:1-abc', peers: [{ name: 'node', value: '127.0.0.1' }] }),
  };
  const container = (id, name, extra) => ({ id, name, image: 'busybox', state: 'running', network_mode: 'front', mode: 'bridge',
    shares: null, netns: 'ep0', pid: 1, hostname: id, command: '', endpoints: [], ports: [], dns: null, project: null,
    service: null, labels: [], created: '', ...extra });
  state.docker_containers = {
    c1: container('c1', 'web', { endpoints: [{ network: 'front', network_id: 'n1', ipv4: '198.18.9.2/24', ipv6: null,
      gateway: null, mac: '02:42:c6:12:09:82', aliases: [] }] }),
    c2: container('c2', 'side', { mode: 'container', shares: 'c1' }),
    c3: container('c3', 'tool', { mode: 'host', netns: 'host' }),
  };
  state.docker_images = {};
  return state;
}

test('containers name their namespaces and their endpoints lead to the host veth and bridge', () => {
  const h = loaded(dockerState()).hosts.alpha;
  assert.deepEqual(h.containersIn('ep0').map((c) => c.name), ['side', 'web']); // container: mode shares it
  assert.deepEqual(h.containersIn('host').map((c) => c.name), ['tool']);
  const [endpoint] = h.containerEndpoints(h.state.docker_containers.c1);
  assert.deepEqual([endpoint.interface, endpoint.host_veth, endpoint.bridge], ['eth0', 'p0', 'br0']);
  assert.equal(h.dockerNetworkOf(h.links.get('alpha|host|2')).name, 'front');
  assert.equal(h.dockerOverlays.get('docker:1-abc').name, 'mesh');
});

test("a bridge that is neither Docker's nor accepted is marked as dropped by Docker's firewall", () => {
  const h = loaded(dockerState()).hosts.alpha;
  assert.equal(h.dockerDrops(h.links.get('alpha|host|2')), null, "Docker's own bridge passes");
  assert.match(h.dockerDrops(h.links.get('alpha|host|3')), /brX.*DOCKER-USER/);
  const accepted = loaded(dockerState({ accepted: ['brX'] })).hosts.alpha;
  assert.equal(accepted.dockerDrops(accepted.links.get('alpha|host|3')), null);
  const open = loaded(dockerState({ policy: 'ACCEPT' })).hosts.alpha;
  assert.equal(open.dockerDrops(open.links.get('alpha|host|3')), null);
});

test('a container that goes away relabels its namespace', () => {
  const model = loaded(dockerState());
  model.apply({ type: 'topology.delta', host: 'alpha', seq: 2, events: [{ kind: 'docker_containers', action: 'del', key: 'c1' }] });
  assert.ok(model.takeDirty().has('alpha|ns|ep0'));
  assert.deepEqual(model.hosts.alpha.containersIn('ep0').map((c) => c.name), ['side']);
});

test("search finds a container's namespace by its name, image or Compose project, and a Docker network's bridge", () => {
  const state = dockerState();
  state.docker_containers.c1.project = 'shop';
  const model = loaded(state);
  assert.ok(model.searchMatches('web').has('alpha|ns|ep0'));
  assert.ok(model.searchMatches('SHOP').has('alpha|ns|ep0'));
  assert.ok(model.searchMatches('front').has('alpha|host|2'));
});

test("a Compose project's domain holds its networks' bridges and its containers' interfaces, not the rest", () => {
  const state = dockerState();
  state.docker_networks.n1.project = 'shop';
  state.docker_containers.c1.project = 'shop';
  const model = loaded(state);
  assert.deepEqual(model.composeProjects(), ['shop']);
  const domain = model.networkDomain('compose:shop');
  for (const id of ['alpha|host|2', 'alpha|host|10', 'alpha|ep0|2', 'alpha|ep0|1']) assert.ok(domain.has(id), id);
  assert.ok(!domain.has('alpha|host|3'), 'the bridge of no project stays out');
});

test("a service's node follows its instances' health and is touched with their namespaces", () => {
  const state = { ...hostState(2), service_health: {} };
  const health = (instance, status, netns) => ({
    network: 'front', service: 'web', instance, status, output: '', checked_ms: 1, since_ms: 1, rtt_us: null,
    address: '198.18.1.10', port: 80, netns, bridge: 'br0', vip: '198.18.1.100:80/tcp',
  });
  state.service_health['front|web|a'] = health('a', 'passing', 'ep0');
  state.service_health['front|web|b'] = health('b', 'critical', 'ep1');
  const model = loaded(state);
  const h = model.hosts.alpha;
  const id = ids.service('alpha', 'front', 'web');
  assert.deepEqual([...h.services.get(id).instances.keys()], ['a', 'b']);
  assert.equal(serviceStatus(h.services.get(id).instances), 'warning');
  assert.deepEqual([...h.nsServices.get('ep0')], [id]);

  model.apply({ type: 'topology.delta', host: 'alpha', seq: 2, events: [
    { kind: 'service_health', action: 'set', key: 'front|web|b', object: health('b', 'passing', 'ep1') },
  ] });
  assert.equal(serviceStatus(h.services.get(id).instances), 'passing');
  assert.ok(model.takeDirty().has(id));

  model.apply({ type: 'topology.delta', host: 'alpha', seq: 3, events: [
    { kind: 'namespaces', action: 'set', key: 'ep1', object: { name: 'ep1', inode: 9, kind: 'named' } },
  ] });
  assert.ok(model.takeDirty().has(id), 'a namespace drawn again redraws the edges of its services');

  model.apply({ type: 'topology.delta', host: 'alpha', seq: 4, events: [
    { kind: 'service_health', action: 'del', key: 'front|web|a', object: null },
    { kind: 'service_health', action: 'del', key: 'front|web|b', object: null },
  ] });
  assert.equal(h.services.has(id), false);
  assert.equal(h.nsServices.has('ep0'), false);
  assert.equal(serviceStatus(new Map()), 'unknown');
});

test("a Docker service's instances lead to their containers' namespaces, and its node sits by the Docker bridge", () => {
  const state = { ...dockerState(), service_health: {} };
  const health = (instance, address) => ({
    network: 'front', service: 'api', instance, status: 'passing', output: '', checked_ms: 1, since_ms: 1, rtt_us: null,
    address, port: 80, netns: null, bridge: 'br0', vip: null,
  });
  state.service_health['front|api|web'] = health('web', '198.18.9.2'); // container c1's address on front
  state.service_health['front|api|gone'] = health('gone', '198.18.9.99'); // no container holds it
  const model = loaded(state);
  const h = model.hosts.alpha;
  const id = ids.service('alpha', 'front', 'api');
  const service = h.services.get(id);
  assert.equal(service.bridge, 'br0');
  assert.equal(service.instances.get('web').netns, 'ep0');
  assert.equal(service.instances.get('gone').netns, null);
  assert.deepEqual([...h.nsServices.get('ep0')], [id]);

  model.apply({ type: 'topology.delta', host: 'alpha', seq: 2, events: [
    { kind: 'service_health', action: 'del', key: 'front|api|web', object: null },
  ] });
  assert.equal(h.nsServices.has('ep0'), false, 'the container left the service: its namespace no longer leads to it');
});
