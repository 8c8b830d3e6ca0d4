// node --test static/js/tests/ : the Traffic layer's pure logic (traffic.js): objects of the `traffic`
// state kind -> "talks to" edges and "outside" nodes, the width scale, labels, the diff against what
// is drawn, and the Traffic table's rows; fed through the page's real model.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ids, TopologyModel } from '../model.js';
import { TABLES, filterRows, sortRows } from '../tables.js';
import {
  edgeWidth,
  formatBytes,
  TRAFFIC_TABLE,
  trafficCount,
  trafficDiff,
  trafficElements,
  trafficFacts,
  trafficIds,
  trafficLabel,
  trafficRows,
  WIDTH_MAX,
  WIDTH_MIN,
} from '../traffic.js';

/** A traffic object as the agent sends it, and its key (client|server|protocol|port). */
function talk(client, server, { port = 80, protocol = 'tcp', address = '198.18.0.2', flows = 1, packets = 10, bytes = 1000 } = {}) {
  const object = { client, server, server_address: address, protocol, port, flows, packets, bytes, seen_in: [client, server].filter(Boolean).sort() };
  return [`${client}|${server}|${protocol}|${port ?? ''}`, object];
}

/** A namespace holding one veth, as netcore sends it (enough for the model to draw a box). */
function namespace(name, index) {
  return [`${name}`, { name, kind: 'named', id: index }];
}

function veth(netns, index) {
  return [`${netns}|${index}`, { netns, index, name: 'eth0', kind: 'veth', mtu: 1500, mac: `02:00:00:00:00:${index.toString(16).padStart(2, '0')}`, up: true, state: 'up', master: null, alias: null }];
}

function modelWith(traffic, names = ['client1', 'web1', 'db1']) {
  const model = new TopologyModel();
  model.apply({
    type: 'topology.snapshot', host: 'h1', online: true, seq: 1,
    state: {
      namespaces: Object.fromEntries(names.map((n, i) => namespace(n, i + 1))),
      links: Object.fromEntries(names.map((n, i) => veth(n, i + 2))),
      traffic: Object.fromEntries(traffic),
    },
  });
  return model;
}

const everything = () => true;

test('each traffic object is one arrowed edge from the client namespace box to the server box', () => {
  const [key, web] = talk('client1', 'web1', { bytes: 5000 });
  const model = modelWith([[key, web]]);
  const { nodes, edges } = trafficElements(Object.values(model.hosts), everything);
  assert.deepEqual(nodes, [], 'no outside node when every server is a namespace of the host');
  assert.equal(edges.length, 1);
  const [edge] = edges;
  assert.equal(edge.data.id, trafficIds.edge('h1', key));
  assert.equal(edge.data.source, ids.ns('h1', 'client1'));
  assert.equal(edge.data.target, ids.ns('h1', 'web1'));
  assert.equal(edge.data.label, 'tcp/80');
  assert.equal(edge.data.width, edgeWidth(5000));
  assert.deepEqual([edge.data.flows, edge.data.packets, edge.data.bytes], [1, 10, 5000]);
  assert.match(edge.data.title, /^client1 → web1 tcp\/80: 1 flow, 10 packets, 5\.0 kB$/);
  assert.equal(edge.classes, 'traffic');
});

test('a server outside the host meets the others at one "outside" node per host', () => {
  const model = modelWith([
    talk('client1', '', { port: null, protocol: 'icmp', address: '198.19.0.9' }),
    talk('web1', '', { port: 53, protocol: 'udp', address: '198.19.0.53' }),
  ]);
  const { nodes, edges } = trafficElements(Object.values(model.hosts), everything);
  assert.deepEqual(nodes.map((n) => [n.data.id, n.data.type, n.classes]), [[trafficIds.outside('h1'), 'outside', 'outside']]);
  assert.deepEqual(edges.map((e) => [e.data.target, e.data.label, e.classes]).sort(), [
    [trafficIds.outside('h1'), 'icmp', 'traffic traffic-outside'],
    [trafficIds.outside('h1'), 'udp/53', 'traffic traffic-outside'],
  ]);
});

test('an edge whose end is not drawn is left out; a folded namespace is reached through its group', () => {
  const model = modelWith([talk('client1', 'web1'), talk('client1', 'db1', { port: 5432 })]);
  const h = model.hosts.h1;
  h.folded.set('db1', { group: 'h1|host|9|endpoints' }); // as settleFolding marks it
  const drawnIds = new Set([ids.ns('h1', 'client1'), 'h1|host|9|endpoints']);
  const { edges } = trafficElements([h], (id) => drawnIds.has(id));
  assert.deepEqual(edges.map((e) => [e.data.source, e.data.target]), [[ids.ns('h1', 'client1'), 'h1|host|9|endpoints']]);
});

test('the width grows with the log of the bytes, from a floor to a ceiling', () => {
  assert.equal(edgeWidth(0), WIDTH_MIN);
  assert.equal(edgeWidth(-5), WIDTH_MIN);
  assert.equal(edgeWidth(Number.NaN), WIDTH_MIN);
  assert.equal(edgeWidth(1e9), WIDTH_MAX);
  assert.equal(edgeWidth(1e15), WIDTH_MAX);
  const steps = [1e2, 1e4, 1e6, 1e8].map(edgeWidth);
  assert.deepEqual([...steps].sort((a, b) => a - b), steps, 'more bytes, wider');
  // a log scale: each factor of 100 adds about the same width
  const gaps = steps.slice(1).map((w, i) => w - steps[i]);
  assert.ok(Math.max(...gaps) - Math.min(...gaps) < 0.3, gaps.join(' '));
});

test('labels and byte counts read as people write them', () => {
  assert.equal(trafficLabel({ protocol: 'tcp', port: 443 }), 'tcp/443');
  assert.equal(trafficLabel({ protocol: 'icmpv6', port: null }), 'icmpv6');
  assert.equal(trafficLabel({ protocol: '47', port: null }), '47');
  assert.deepEqual([0, 950, 1234, 34_500_000, 2e12].map(formatBytes), ['0 B', '950 B', '1.2 kB', '35 MB', '2.0 TB']);
  const facts = Object.fromEntries(trafficFacts(talk('c', '', { address: '198.19.0.9', bytes: 1500 })[1]));
  assert.equal(facts.Server, 'outside the host: 198.19.0.9');
  assert.equal(facts.Bytes, '1.5 kB (1,500)');
});

test('the diff against what is drawn adds, updates only what changed, and removes what is gone', () => {
  const [key, web] = talk('client1', 'web1');
  const model = modelWith([[key, web], talk('client1', 'db1', { port: 5432 })]);
  const hosts = Object.values(model.hosts);
  const first = trafficElements(hosts, everything);
  const none = trafficDiff(new Map(), first);
  assert.equal(none.add.length, 2);
  assert.deepEqual([none.update, none.remove], [[], []]);

  const drawn = new Map(first.edges.map((e) => [e.data.id, { ...e.data }]));
  assert.deepEqual(trafficDiff(drawn, first), { add: [], update: [], remove: [] }, 'nothing changed: nothing to do');

  // a delta: web1's conversation carried more, db1's ended
  model.apply({ type: 'topology.delta', host: 'h1', seq: 2, events: [
    { kind: 'traffic', action: 'set', key, object: { ...web, flows: 2, packets: 90, bytes: 2e6 } },
    { kind: 'traffic', action: 'del', key: talk('client1', 'db1', { port: 5432 })[0], object: null },
  ] });
  const next = trafficDiff(drawn, trafficElements(hosts, everything));
  assert.deepEqual(next.add, []);
  assert.deepEqual(next.remove, [trafficIds.edge('h1', talk('client1', 'db1', { port: 5432 })[0])]);
  assert.equal(next.update.length, 1);
  assert.deepEqual(Object.keys(next.update[0].data).sort(), ['bytes', 'flows', 'packets', 'title', 'width']);
  assert.equal(next.update[0].data.width, edgeWidth(2e6));
});

test('an edge whose end moved (its namespace folded) is drawn again between the new ends', () => {
  const model = modelWith([talk('client1', 'web1')]);
  const h = model.hosts.h1;
  const before = trafficElements([h], everything);
  const drawn = new Map(before.edges.map((e) => [e.data.id, { ...e.data }]));
  h.folded.set('web1', { group: 'h1|host|9|endpoints' });
  const { add, remove } = trafficDiff(drawn, trafficElements([h], everything));
  assert.deepEqual(remove, [before.edges[0].data.id]);
  assert.deepEqual(add.map((e) => e.data.target), ['h1|host|9|endpoints']);
});

test('the Traffic table lists every live conversation, filters and sorts like the other tables', () => {
  const model = modelWith([
    talk('client1', 'web1', { bytes: 300 }),
    talk('web1', 'db1', { port: 5432, bytes: 9000, flows: 3 }),
    talk('client1', '', { port: 443, address: '198.19.0.9', bytes: 50 }),
  ]);
  const hosts = Object.values(model.hosts);
  assert.equal(trafficCount(hosts), 3);
  assert.equal(trafficCount([]), 0);
  const rows = trafficRows(hosts);
  assert.deepEqual(
    sortRows(rows, 'bytes', 'descending').map((r) => [r.values.client, r.values.server, r.values.service, r.values.bytes]),
    [['web1', 'db1', 'tcp/5432', 9000], ['client1', 'web1', 'tcp/80', 300], ['client1', 'outside 198.19.0.9', 'tcp/443', 50]],
  );
  assert.ok(rows.every((r) => r.id.startsWith('traffic:h1|') && r.host === 'h1' && r.kind === 'traffic'));
  assert.deepEqual(filterRows(rows, { text: 'db1' }).map((r) => r.values.service), ['tcp/5432']);
  assert.deepEqual(filterRows(rows, { hiddenHosts: new Set(['h1']) }), []);
  // the shape tables.js draws (it is registered on the page as TABLES.traffic)
  assert.deepEqual(TRAFFIC_TABLE.columns.map(([key]) => key), ['host', 'client', 'server', 'address', 'service', 'flows', 'packets', 'bytes']);
  assert.ok(!('traffic' in TABLES), 'importing traffic.js changes no other module');
});
