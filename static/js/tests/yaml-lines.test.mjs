// node --test static/js/tests/ : errors of a topology file point at their line.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { lineOfPath } from '../yaml-lines.js';

const FILE = `name: demo
networks:
  front:
    subnet: 198.18.1.0/24
    mtu: 1500
  back: {driver: vxlan, subnet: 198.18.2.0/24, vni: 0}
nodes:
  web1: {networks: [front]}
  web2:
    networks: [front]
    ports: ["8080:80", "bad"]
routes:
  - {node: web1, to: 198.18.9.0/24, via: 198.18.1.254}
`;

test('a block-style key is found on its own line', () => {
  assert.equal(lineOfPath(FILE, 'name'), 1);
  assert.equal(lineOfPath(FILE, 'networks.front.subnet'), 4);
  assert.equal(lineOfPath(FILE, 'networks.front.mtu'), 5);
  assert.equal(lineOfPath(FILE, 'nodes.web2.ports[1]'), 11);
});

test('a key inside a flow mapping is found on the line that writes it', () => {
  assert.equal(lineOfPath(FILE, 'networks.back.vni'), 6);
  assert.equal(lineOfPath(FILE, 'nodes.web1.networks'), 8);
});

test('a key is looked for only under its parent, and a missing one points at the parent', () => {
  assert.equal(lineOfPath(FILE, 'networks.front.gateway'), 3); // not written: its parent
  assert.equal(lineOfPath(FILE, 'nodes.web3.networks'), 7);
  assert.equal(lineOfPath(FILE, 'routes[0].via'), 13);
  assert.equal(lineOfPath(FILE, 'unknown'), null);
});
