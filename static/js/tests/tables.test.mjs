// node --test static/js/tests/ : the tables' rows, filters, sorting and CSV, without a browser.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { aliasNames, parseOwnerAlias } from '../links.js';
import { addressRows, filterRows, networkRows, routeRows, sortRows, subnetOf, TABLES, toCsv } from '../tables.js';

function link(netns, index, name, extra = {}) {
  return { netns, index, name, kind: null, mtu: 1500, mac: `02:00:00:00:00:${String(index).padStart(2, '0')}`, up: true,
    state: 'up', master: null, alias: null, peer: null, vxlan: null, ...extra };
}

/** A host with bridge br0 (198.18.1.1/24) and one endpoint namespace web1 (eth0 198.18.1.2/24). */
function host(name = 'alpha') {
  const br0 = link('host', 2, 'br0', { kind: 'bridge', alias: 'switchboard:demo:bridge:network=front' });
  const port = link('host', 3, 'web1-front', { kind: 'veth', master: 'br0', peer: { netns: 'web1', index: 2, name: 'eth0' },
    alias: 'switchboard:demo:veth:node=web1:network=front' });
  const eth0 = link('web1', 2, 'eth0', { kind: 'veth', peer: { netns: 'host', index: 3, name: 'web1-front' } });
  const spare = link('host', 4, 'spare0', { kind: 'veth', master: 'br0', up: false, state: 'down' });
  const addr = (l, address, prefixlen) => ({ netns: l.netns, ifindex: l.index, ifname: l.name, family: address.includes(':') ? 10 : 2,
    address, prefixlen, scope: 'universe' });
  return {
    name,
    state: {
      namespaces: {}, neighbours: {}, fdb: {},
      links: Object.fromEntries([br0, port, eth0, spare].map((l) => [`${l.netns}|${l.index}`, l])),
      addresses: { a: addr(br0, '198.18.1.1', 24), b: addr(eth0, '198.18.1.2', 24), c: addr(eth0, 'fd00:1::2', 64) },
      routes: {
        r: { netns: 'web1', family: 2, dst: 'default', gateway: '198.18.1.1', dev: 'eth0', oif: 2, protocol: 'static',
          scope: 'universe', metric: null, prefsrc: null, onlink: false },
      },
    },
  };
}

test('an address row says where the address lives and how it reaches its bridge', () => {
  const rows = addressRows([host()]);
  assert.equal(rows.length, 3);
  const row = rows.find((r) => r.values.address === '198.18.1.2/24');
  assert.equal(row.id, 'alpha|web1|2');
  assert.deepEqual(
    { ...row.values },
    { host: 'alpha', namespace: 'web1', interface: 'eth0', address: '198.18.1.2/24', mac: '02:00:00:00:00:02', state: 'up',
      peer: 'web1-front', bridge: 'br0' },
  );
  assert.equal(rows.find((r) => r.values.address === '198.18.1.1/24').values.bridge, 'br0');
});

test('a network row has its subnet, gateway, ports, endpoints and down ports', () => {
  const [row] = networkRows([host()]);
  assert.equal(row.id, 'alpha|host|2');
  assert.equal(row.values.subnet, '198.18.1.0/24');
  assert.equal(row.values.gateway, '198.18.1.1');
  assert.equal(row.values.ports, 2);
  assert.equal(row.values.endpoints, 1);
  assert.equal(row.values.state, 'up, 1 of 2 ports down');
});

test('a route row names its namespace, destination, gateway and device', () => {
  const [row] = routeRows([host()]);
  assert.equal(row.id, 'alpha|web1|2');
  assert.equal(row.values.destination, 'default');
  assert.equal(row.values.gateway, '198.18.1.1');
  assert.equal(row.values.device, 'eth0');
});

test('subnets of IPv4 and IPv6 addresses', () => {
  assert.equal(subnetOf('198.18.1.77', 24), '198.18.1.0/24');
  assert.equal(subnetOf('198.19.255.1', 15), '198.18.0.0/15');
  assert.equal(subnetOf('fd00:1::2', 64), 'fd00:1::/64');
  assert.equal(subnetOf('fd00:1:2:3:4:5:6:7', 48), 'fd00:1:2::/48');
});

test('filters: hosts, kinds, network domain, search and the table filter, including alias names', () => {
  const rows = addressRows([host('alpha'), host('beta')]);
  assert.equal(filterRows(rows, { hiddenHosts: new Set(['beta']) }).length, 3);
  assert.equal(filterRows(rows, { hiddenKinds: new Set(['veth']) }).length, 2);
  assert.equal(filterRows(rows, { domain: new Set(['beta|web1|2']) }).length, 2);
  assert.equal(filterRows(rows, { query: '198.18.1.2', text: 'beta' }).length, 1);
  // eth0's host-side veth is web1-front, whose alias names node web1 and network front.
  assert.equal(filterRows(rows, { query: 'FRONT' }).length, 6);
});

test('sorting by a column, numbers and names in natural order, both ways', () => {
  const rows = addressRows([host('n10'), host('n2')]);
  assert.deepEqual(sortRows(rows, 'host').map((r) => r.host), ['n2', 'n2', 'n2', 'n10', 'n10', 'n10']);
  const down = sortRows(rows, 'address', 'descending').map((r) => r.values.address);
  assert.deepEqual(down.slice(0, 2), ['fd00:1::2/64', 'fd00:1::2/64']);
  const nets = networkRows([host('a'), host('b')]);
  nets[1].values.ports = 10;
  assert.deepEqual(sortRows(nets, 'ports').map((r) => r.values.ports), [2, 10]);
});

test('CSV has a header and one quoted line per row, never a formula', () => {
  const rows = addressRows([host()]);
  rows[0].values.interface = 'a,"b"';
  rows[1].values.interface = '=cmd()';
  const lines = toCsv(TABLES.endpoints.columns, rows).trimEnd().split('\r\n');
  assert.equal(lines[0], 'Host,Namespace,Interface,Address,MAC,State,Host-side veth,Bridge');
  assert.equal(lines.length, 4);
  assert.ok(lines[1].includes('"a,""b"""'));
  assert.ok(lines[2].includes(",'=cmd(),"));
});

test('owner aliases parse as netcore.names.parse_owner_alias does', () => {
  assert.deepEqual(parseOwnerAlias('switchboard:demo:veth:node=web1'), { topology: 'demo', role: 'veth', node: 'web1' });
  assert.equal(parseOwnerAlias('switchboard:demo:cable:node=web1'), null);
  assert.equal(parseOwnerAlias('other:demo:veth'), null);
  assert.equal(parseOwnerAlias('switchboard:demo:veth:node=a:node=b'), null);
  assert.equal(parseOwnerAlias('switchboard:demo:segment:segment=x'), null);
  assert.deepEqual(aliasNames('switchboard:demo:veth:node=Web1:network=front'), ['web1', 'front']);
  assert.deepEqual(aliasNames(null), []);
});
