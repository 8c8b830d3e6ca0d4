// node --test static/js/tests/ : the tables' rows, filters, sorting and CSV, without a browser.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { aliasNames, ownerNames, parseOwnerAlias } from '../links.js';
import {
  addressRows, filterRows, interfaceRows, networkRows, routeRows, sortRows, subnetOf, TABLES, toCsv,
} from '../tables.js';

function link(netns, index, name, extra = {}) {
  return { netns, index, name, kind: null, mtu: 1500, mac: `02:00:00:00:00:${String(index).padStart(2, '0')}`, up: true,
    state: 'up', master: null, alias: null, peer: null, vxlan: null, ...extra };
}

/**
 * A host with bridge br0 (198.18.1.1/24) and one endpoint namespace web1 (eth0 198.18.1.2/24),
 * which the container: node side shares (the owner alias on web1's lo says so).
 */
function host(name = 'alpha') {
  const hostLo = link('host', 1, 'lo', { mac: '00:00:00:00:00:00', state: 'unknown', mtu: 65536 });
  const lo = link('web1', 1, 'lo', { mac: '00:00:00:00:00:00', state: 'unknown', mtu: 65536,
    alias: 'switchboard:demo:node:node=web1:shared=side' });
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
      links: Object.fromEntries([hostLo, br0, port, spare, lo, eth0].map((l) => [`${l.netns}|${l.index}`, l])),
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
    { host: 'alpha', namespace: 'web1', nodes: 'web1, side', interface: 'eth0', address: '198.18.1.2/24',
      mac: '02:00:00:00:00:02', state: 'up', peer: 'web1-front', bridge: 'br0' },
  );
  const gateway = rows.find((r) => r.values.address === '198.18.1.1/24');
  assert.equal(gateway.values.bridge, 'br0');
  assert.equal(gateway.values.nodes, ''); // the host namespace is no node's
});

test('a container: node is found where it lives: the rows of the namespace it shares', () => {
  const rows = addressRows([host()]);
  assert.deepEqual(filterRows(rows, { query: 'side' }).map((r) => r.values.address).sort(), ['198.18.1.2/24', 'fd00:1::2/64']);
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
  assert.equal(lines[0], 'Host,Namespace,Nodes,Interface,Address,MAC,State,Host-side veth,Bridge');
  assert.equal(lines.length, 4);
  assert.ok(lines[1].includes('"a,""b"""'));
  assert.ok(lines[2].includes(",'=cmd(),"));
});

// -- interfaces -------------------------------------------------------------------------------

const byName = (rows) => Object.fromEntries(rows.map((r) => [`${r.values.namespace}:${r.values.name}`, r]));

test('an interface row: kind, state and operstate, MTU, MAC, every address, master, peer and owner', () => {
  const rows = byName(interfaceRows([host()]));
  assert.equal(Object.keys(rows).length, 6); // every link of every namespace, lo included
  const port = rows['host:web1-front'];
  assert.equal(port.id, 'alpha|host|3'); // the graph's id of the link
  assert.equal(port.kind, 'veth');
  assert.deepEqual(
    { ...port.values },
    { host: 'alpha', namespace: 'host', name: 'web1-front', kind: 'veth', state: 'up', operstate: 'up', mtu: 1500,
      mac: '02:00:00:00:00:03', addresses: '', master: 'br0', peer: 'eth0 (web1)', owner: 'web1, front' },
  );
  const eth0 = rows['web1:eth0'];
  assert.equal(eth0.values.addresses, '198.18.1.2/24, fd00:1::2/64');
  assert.equal(eth0.values.peer, 'web1-front (host)');
  assert.equal(rows['host:br0'].values.kind, 'bridge');
  assert.equal(rows['host:br0'].values.owner, 'front');
  const lo = rows['web1:lo'];
  assert.deepEqual([lo.kind, lo.values.state, lo.values.operstate, lo.values.mtu], ['lo', 'up', 'unknown', 65536]);
  assert.equal(lo.values.owner, 'web1, side'); // the node and the container: node sharing its namespace
});

test('a down interface is listed as down, with the kernel operstate saying how', () => {
  const h = host();
  const rows = byName(interfaceRows([h]));
  assert.deepEqual([rows['host:spare0'].values.state, rows['host:spare0'].values.operstate], ['down', 'down']);
  // administratively up, but its carrier is gone (the peer end is down): down too
  h.state.links['web1|2'] = { ...h.state.links['web1|2'], state: 'lowerlayerdown' };
  const eth0 = byName(interfaceRows([h]))['web1:eth0'];
  assert.deepEqual([eth0.values.state, eth0.values.operstate], ['down', 'lowerlayerdown']);
  // and sorting by state puts the down ones together
  const sorted = sortRows(interfaceRows([h]), 'state').map((r) => r.values.state);
  assert.deepEqual(sorted, ['down', 'down', 'up', 'up', 'up', 'up']);
});

test('interface rows follow the same filters: hosts, kinds, network domain, search and alias names', () => {
  const rows = interfaceRows([host('alpha'), host('beta')]);
  assert.equal(rows.length, 12);
  assert.equal(filterRows(rows, { hiddenHosts: new Set(['beta']) }).length, 6);
  assert.equal(filterRows(rows, { hiddenKinds: new Set(['veth']) }).length, 6);
  assert.equal(filterRows(rows, { hiddenKinds: new Set(['veth', 'lo']) }).length, 2);
  assert.deepEqual(filterRows(rows, { domain: new Set(['beta|web1|2', 'beta|host|2']) }).map((r) => r.id), ['beta|host|2', 'beta|web1|2']);
  assert.deepEqual(filterRows(rows, { query: '02:00:00:00:00:04', text: 'alpha' }).map((r) => r.id), ['alpha|host|4']);
  // eth0 by its host-side veth's alias (node web1, network front), lo by the node sharing it
  assert.deepEqual(filterRows(rows, { query: 'FRONT', text: 'alpha' }).map((r) => r.values.name).sort(), ['br0', 'eth0', 'web1-front']);
  assert.deepEqual(filterRows(rows, { query: 'side' }).map((r) => r.id), ['alpha|web1|1', 'beta|web1|1']);
});

test('interface CSV: the header, several addresses quoted as one cell, never a formula', () => {
  const rows = sortRows(interfaceRows([host()]), 'name');
  const named = (name) => rows.find((r) => r.values.name === name);
  named('spare0').values.name = '=HYPERLINK("x")';
  named('br0').values.name = '-1+2';
  const lines = toCsv(TABLES.interfaces.columns, rows).trimEnd().split('\r\n');
  assert.equal(lines[0], 'Host,Namespace,Name,Kind,State,Operstate,MTU,MAC,Addresses,Master,Peer,Owner names');
  assert.equal(lines.length, 7);
  assert.ok(lines.includes('alpha,web1,eth0,veth,up,up,1500,02:00:00:00:00:02,"198.18.1.2/24, fd00:1::2/64",,web1-front (host),'));
  assert.ok(lines.some((line) => line.startsWith('alpha,host,"\'=HYPERLINK(""x"")",veth,down,down,')));
  assert.ok(lines.some((line) => line.startsWith("alpha,host,'-1+2,bridge,")));
  assert.ok(lines.some((line) => line.startsWith('alpha,host,web1-front,') && line.endsWith(',"web1, front"')));
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

test("a node namespace's alias names the container: nodes sharing it", () => {
  assert.deepEqual(parseOwnerAlias('switchboard:demo:node:node=web1:shared=db,side'),
    { topology: 'demo', role: 'node', node: 'web1', shared: ['db', 'side'] });
  assert.deepEqual(aliasNames('switchboard:demo:node:node=Web1:shared=DB,side'), ['web1', 'db', 'side']);
  assert.deepEqual(ownerNames('switchboard:demo:node:node=Web1:shared=DB,side'), ['Web1', 'DB', 'side']);
  assert.deepEqual(ownerNames('switchboard:demo:node:node=a=b:shared=c=d'), ['a=b', 'c=d']); // '=' may be in a name
  for (const refused of [
    'switchboard:demo:veth:node=web1:shared=side', // only a node's alias lists sharers
    'switchboard:demo:node:node=web1:shared=',
    'switchboard:demo:node:node=web1:shared=a,,b',
    'switchboard:demo:node:node=web1:shared=a,',
    'switchboard:demo:node:node=web1:shared=a,a',
    'switchboard:demo:node:node=web1:shared=a:shared=b',
  ]) {
    assert.equal(parseOwnerAlias(refused), null, refused);
    assert.deepEqual(aliasNames(refused), [], refused);
  }
});
