// node --test static/js/tests/ : the Explain path panel's pure part (explain.js): the request from the
// form, where an error answer goes, and which graph elements a walk's hops name, without a browser.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  destinationName,
  droppedText,
  explainErrors,
  explainRequest,
  hopTargets,
  namespaceChoices,
  namespaceAddress,
  PROTOCOLS,
  seenMark,
  splitPort,
  swapEnds,
  walkPath,
} from '../explain.js';
import { FOLD_ABOVE, ids, TopologyModel } from '../model.js';

/**
 * Host alpha: bridge demo-lan in the host namespace, nodes demo-a and demo-b on it (eth0 each, their
 * host ends demo-a-lan / demo-b-lan), a Docker container's namespace docker:c0ffee with an address,
 * and `extra` more endpoints on the bridge (enough of them fold the network into a group).
 */
function host({ extra = 0 } = {}) {
  const state = { namespaces: {}, links: {}, addresses: {}, routes: {}, neighbours: {}, fdb: {}, docker_containers: {} };
  const ns = (name, kind = 'named') => (state.namespaces[name] = { name, inode: Object.keys(state.namespaces).length + 1, kind });
  const link = (netns, index, name, more = {}) =>
    (state.links[`${netns}|${index}`] = { netns, index, name, kind: null, mtu: 1500, mac: null, up: true, state: 'up', master: null,
      alias: null, peer: null, vxlan: null, ...more });
  const address = (netns, ifindex, cidr, more = {}) => {
    const [a, prefixlen] = cidr.split('/');
    state.addresses[`${netns}|${ifindex}|${a}`] = { netns, ifindex, address: a, prefixlen: Number(prefixlen), family: a.includes(':') ? 10 : 2, scope: 'universe', ...more };
  };
  ns('host', 'host');
  link('host', 1, 'lo');
  link('host', 2, 'demo-lan', { kind: 'bridge' });
  const node = (name, index, cidr) => {
    ns(name);
    link(name, 1, 'lo');
    link(name, 2, 'eth0', { kind: 'veth', peer: { netns: 'host', index, name: `${name}-lan` } });
    link('host', index, `${name}-lan`, { kind: 'veth', master: 'demo-lan', peer: { netns: name, index: 2, name: 'eth0' } });
    address(name, 1, '127.0.0.1/8', { scope: 'host' });
    if (cidr) address(name, 2, cidr);
  };
  node('demo-a', 10, '198.18.44.11/24');
  node('demo-b', 11, '198.18.44.12/24');
  for (let i = 0; i < extra; i += 1) node(`demo-x${i}`, 20 + i, null);
  ns('docker:c0ffee', 'docker');
  link('docker:c0ffee', 1, 'lo');
  link('docker:c0ffee', 7, 'eth0', { kind: 'veth' });
  address('docker:c0ffee', 7, 'fd00::5/64');
  address('docker:c0ffee', 7, '198.18.50.5/24');
  state.docker_containers.c0ffee = { id: 'c0ffee', name: 'web', netns: 'docker:c0ffee', endpoints: [] };
  const model = new TopologyModel();
  model.apply({ type: 'topology.snapshot', host: 'alpha', online: true, seq: 1, state });
  model.takeDirty();
  return model.hosts.alpha;
}

const hop = (netns, kind, object, verdict = 'forward', cause = '') => ({ netns, kind, object, decision: `${kind} ${object}`, verdict, cause });

/** The walk of demo-a -> demo-b:8080 over the bridge, ending as `end` ('deliver', or a drop's cause). */
function walk(end = 'deliver') {
  const hops = [
    hop('demo-a', 'route', '198.18.44.12'),
    hop('demo-a', 'veth', 'eth0'),
    hop('host', 'fdb', 'demo-lan'),
    hop('host', 'veth', 'demo-b-lan'),
    hop('demo-b', 'route', '198.18.44.12', 'deliver'),
    end === 'deliver' ? hop('demo-b', 'deliver', 'tcp/8080', 'deliver') : hop('demo-b', 'deliver', 'tcp/8080', 'drop', end),
  ];
  const dropped = end !== 'deliver';
  return { source: 'demo-a', destination: '198.18.44.12', protocol: 'tcp', port: 8080, hops,
    verdict: dropped ? 'drop' : 'deliver', cause: dropped ? end : '', message: '', advice: '' };
}

const A = ids.ns('alpha', 'demo-a');
const B = ids.ns('alpha', 'demo-b');
const A_ETH0 = 'alpha|demo-a|2';
const B_ETH0 = 'alpha|demo-b|2';
const A_PORT = 'alpha|host|10';
const B_PORT = 'alpha|host|11';
const BRIDGE = 'alpha|host|2';

test('a destination\'s port is split off an address, a name, or a bracketed IPv6 address; a name with a colon keeps it', () => {
  assert.deepEqual(splitPort('198.18.44.12:8080'), { target: '198.18.44.12', port: '8080' });
  assert.deepEqual(splitPort(' demo/b:80 '), { target: 'demo/b', port: '80' });
  assert.deepEqual(splitPort('[fd00::1]:443'), { target: 'fd00::1', port: '443' });
  assert.deepEqual(splitPort('[fd00::1]'), { target: 'fd00::1', port: null });
  assert.deepEqual(splitPort('fd00::1'), { target: 'fd00::1', port: null });
  assert.deepEqual(splitPort('docker:c0ffee'), { target: 'docker:c0ffee', port: null });
  assert.deepEqual(splitPort('demo-b'), { target: 'demo-b', port: null });
});

test('the request carries the trimmed ends, the probe switch, and a protocol only when one is chosen', () => {
  const { body, errors } = explainRequest({ host: 'alpha', source: ' demo/a ', destination: 'demo/b:8080 ', protocol: '', probe: true });
  assert.deepEqual(body, { host: 'alpha', source: 'demo/a', destination: 'demo/b:8080', probe: true });
  assert.equal(errors.size, 0);
  const icmp = explainRequest({ host: 'alpha', source: 'host', destination: '198.18.44.12', protocol: 'icmp', probe: false });
  assert.deepEqual(icmp.body, { host: 'alpha', source: 'host', destination: '198.18.44.12', probe: false, protocol: 'icmp' });
});

test('what is missing is said under its field before anything is asked', () => {
  const { errors } = explainRequest({ host: '', source: '', destination: '  ', protocol: '', probe: true });
  assert.deepEqual([...errors.keys()], ['host', 'source', 'destination']);
  const tcp = explainRequest({ host: 'alpha', source: 'demo-a', destination: 'demo-b', protocol: 'tcp', probe: true });
  assert.match(tcp.errors.get('destination')[0], /needs a port/);
  assert.equal(explainRequest({ host: 'alpha', source: 'demo-a', destination: '[fd00::1]:80', protocol: 'tcp' }).errors.size, 0);
});

test('UDP is offered, and like TCP it needs a port', () => {
  assert.deepEqual(PROTOCOLS.map(([value]) => value), ['', 'tcp', 'udp', 'icmp']);
  const udp = explainRequest({ host: 'alpha', source: 'demo-a', destination: 'demo-b', protocol: 'udp', probe: true });
  assert.match(udp.errors.get('destination')[0], /A UDP question needs a port/);
  const ok = explainRequest({ host: 'alpha', source: 'demo-a', destination: 'demo-b:53', protocol: 'udp', probe: true });
  assert.deepEqual([ok.body.protocol, ok.errors.size], ['udp', 0]);
  const agent = explainErrors(400, { error: 'InvalidInput', message: 'a UDP question needs a port: DESTINATION:PORT' });
  assert.deepEqual([...agent.fields.keys()], ['destination']);
});

test('each hop is marked by what the probe did there: seen, not seen, or not watched', () => {
  const seen = seenMark({ ...hop('host', 'fdb', 'demo-lan'), interface: 'demo-a-lan', probe_seen: { out: 3, back: 2 } });
  assert.deepEqual([seen.mark, seen.state], ['✓', 'seen']);
  assert.match(seen.text, /on demo-a-lan: 3 packets out, 2 packets back/);
  const oneWay = seenMark({ ...hop('demo-b', 'route', '198.18.44.12'), interface: 'eth0', probe_seen: { out: 1, back: 0 } });
  assert.match(oneWay.text, /1 packet out, nothing back/);
  const missing = seenMark({ ...hop('host', 'veth', 'demo-b-lan'), interface: 'demo-b-lan', probe_seen: { out: 0, back: 0 } });
  assert.deepEqual([missing.mark, missing.state, missing.text], ['✗', 'missing', 'The probe was not seen on demo-b-lan']);
  assert.deepEqual([seenMark(hop('demo-a', 'route', '198.18.44.12')).mark, seenMark({ probe_seen: null }).state], ['–', 'unwatched']);
});

test('the rule a trace saw drop the probe is named with its namespace', () => {
  const dropped_by = { netns: 'host', family: 'inet', table: 'sbtest', chain: 'fw', handle: 3, rule: 'tcp dport 8080 drop', policy: false, where: 'inet sbtest fw handle 3' };
  assert.equal(droppedText({ dropped_by }), 'inet sbtest fw handle 3 in host: tcp dport 8080 drop');
  assert.equal(droppedText({ dropped_by: null }), null);
  assert.equal(droppedText(null), null);
});

test('swapping the ends keeps the port with the destination', () => {
  assert.deepEqual(swapEnds('demo-a', 'demo-b:8080'), { source: 'demo-b', destination: 'demo-a:8080' });
  assert.deepEqual(swapEnds('fd00::1', '[fd00::2]:80'), { source: 'fd00::2', destination: '[fd00::1]:80' });
  assert.deepEqual(swapEnds('demo-a', 'demo-b'), { source: 'demo-b', destination: 'demo-a' });
  assert.deepEqual(swapEnds('', 'demo-b:80'), { source: 'demo-b', destination: '' });
});

test('an error answer goes under the field it names, else to a callout; an offline host is said as such', () => {
  const named = explainErrors(404, { error: 'NotFound', message: 'host alpha has no node zz in a topology demo', fields: { destination: ['host alpha has no node zz in a topology demo'] } });
  assert.deepEqual(Object.fromEntries(named.fields), { destination: ['host alpha has no node zz in a topology demo'] });
  assert.deepEqual(named.general, []);
  // the agent's own refusals name no field, but say which end in their first words
  const agent = explainErrors(404, { error: 'NotFound', message: 'destination nowhere is neither an address nor a namespace with an address' });
  assert.deepEqual([...agent.fields.keys()], ['destination']);
  assert.deepEqual([...explainErrors(404, { error: 'NotFound', message: 'source namespace nowhere does not exist' }).fields.keys()], ['source']);
  assert.deepEqual([...explainErrors(400, { error: 'InvalidInput', message: "port '99999' is not a port (1..65535)" }).fields.keys()], ['destination']);
  const serializer = explainErrors(400, { error: 'InvalidInput', message: 'invalid', fields: { protocol: ['"udp" is not a valid choice.'], count: ['too many'] } });
  assert.deepEqual(Object.fromEntries(serializer.fields), { protocol: ['"udp" is not a valid choice.'] });
  assert.deepEqual(serializer.general, ['count: too many']);
  const offline = explainErrors(503, { error: 'HostOffline', message: 'host alpha has no agent connected to ask' });
  assert.deepEqual(offline, { fields: new Map(), general: ['host alpha has no agent connected to ask'], offline: true });
  assert.equal(explainErrors(403, { detail: 'You do not have permission to perform this action.' }).general.length, 1);
  assert.deepEqual(explainErrors(502, 'Bad Gateway').general, ['Bad Gateway']);
});

test('each hop names its namespace or its links, a veth both of its ends', () => {
  const h = host();
  const at = (h2, x) => hopTargets(h2, x).map((t) => t.id);
  assert.deepEqual(at(h, hop('demo-a', 'route', '198.18.44.12')), [A]);
  assert.deepEqual(at(h, hop('demo-a', 'veth', 'eth0')), [A_ETH0, A_PORT]);
  assert.deepEqual(at(h, hop('host', 'fdb', 'demo-lan')), [BRIDGE]);
  assert.deepEqual(at(h, hop('host', 'bridge', 'demo-lan', 'drop', 'ADDRESS_CONFLICT')), [BRIDGE]);
  assert.deepEqual(at(h, hop('host', 'link', 'demo-b-lan', 'drop', 'BRIDGE_PORT_DOWN')), [B_PORT]);
  assert.deepEqual(at(h, hop('demo-b', 'firewall', 'inet filter input handle 4', 'drop', 'FIREWALL_DROP')), [B]);
  assert.deepEqual(at(h, hop('demo-b', 'deliver', 'tcp/8080', 'drop', 'NOTHING_LISTENING')), [B]);
  assert.deepEqual(at(h, hop('host', 'vxlan', 'demo-lan, nothere', 'drop', 'VXLAN_NO_REMOTE')), [BRIDGE]);
  // what the model does not hold: the namespace, or nothing at all
  assert.deepEqual(at(h, hop('demo-a', 'link', 'gone0', 'drop', 'LINK_DOWN')), [A]);
  assert.deepEqual(at(h, hop('elsewhere', 'route', '198.18.1.1')), []);
  assert.deepEqual(at(null, hop('demo-a', 'route', '198.18.44.12')), []);
});

test('a delivered walk is one path from the source namespace to the destination\'s, with no stop', () => {
  const h = host();
  const path = walkPath(h, walk('deliver'));
  assert.deepEqual(path.nodes, [A, A_ETH0, A_PORT, BRIDGE, B_PORT, B_ETH0, B]);
  assert.equal(path.stop, null);
  assert.equal(path.hops.length, 6);
  assert.deepEqual(path.hops[1].targets.map((t) => t.id), [A_ETH0, A_PORT]);
});

test('a dropped walk stops where its last hop dropped it', () => {
  const h = host();
  assert.equal(walkPath(h, walk('NOTHING_LISTENING')).stop, B);
  const down = walk('deliver');
  down.hops = [...down.hops.slice(0, 3), hop('host', 'link', 'demo-b-lan', 'drop', 'BRIDGE_PORT_DOWN')];
  down.verdict = 'drop';
  const path = walkPath(h, down);
  assert.equal(path.stop, B_PORT);
  assert.deepEqual(path.nodes, [A, A_ETH0, A_PORT, BRIDGE, B_PORT]);
  // an abort after a forwarding hop: where it got to; with no hop at all: the source
  const aborted = { ...walk('deliver'), hops: walk('deliver').hops.slice(0, 2), verdict: 'abort', cause: 'NOT_MODELLED' };
  assert.equal(walkPath(h, aborted).stop, A_PORT);
  assert.equal(walkPath(h, { ...aborted, hops: [] }).stop, A);
  assert.equal(walkPath(h, { ...aborted, hops: [], source: 'nowhere' }).stop, null);
  assert.deepEqual(walkPath(null, walk('NOTHING_LISTENING')), { hops: walk().hops.map(() => ({ targets: [], shown: [] })), nodes: [], stop: null });
});

test('folded endpoints are lit as their group, which the path passes once', () => {
  const h = host({ extra: FOLD_ABOVE });
  const group = ids.group(BRIDGE);
  assert.ok(h.folded.has('demo-b'), 'the network is folded');
  const path = walkPath(h, walk('NOTHING_LISTENING'));
  assert.deepEqual(path.nodes, [group, BRIDGE, group]);
  assert.equal(path.stop, group);
  // the raw ids stay, to open the group and select them
  assert.deepEqual(path.hops[5].targets.map((t) => t.id), [B]);
});

test('a namespace is named as a destination by its name, or by its address when its name has a colon', () => {
  const h = host();
  assert.equal(destinationName(h, 'demo-b'), 'demo-b');
  assert.equal(namespaceAddress(h, 'demo-b'), '198.18.44.12');
  assert.equal(destinationName(h, 'docker:c0ffee'), '198.18.50.5'); // IPv4 first
  assert.equal(namespaceAddress(h, 'host'), null);
  assert.equal(destinationName(h, 'docker:gone'), 'docker:gone');
});

test('the source and destination suggestions are the host\'s namespaces, a container\'s with its name', () => {
  const choices = namespaceChoices(host());
  assert.deepEqual(choices.map(([value]) => value), ['demo-a', 'demo-b', 'docker:c0ffee', 'host']);
  assert.deepEqual(choices.find(([value]) => value === 'docker:c0ffee'), ['docker:c0ffee', 'web [container]']);
  assert.deepEqual(namespaceChoices(undefined), []);
});
