// node --test static/js/tests/ : the network-centric layout and free-spot placement, without a browser.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { boxGeometry, layoutScene, nodeExtent, Occupancy, placeFree } from '../layout.js';

const iface = (id, label = id) => ({ id, w: 22, h: 22, label });

/** A host with `hubs` bridges, `per` endpoints on each, routers between neighbours, and loose namespaces. */
function scene({ hubs = 2, per = 30, routers = 2, loose = 3, host = 'alpha' } = {}) {
  const h = { id: host, hostBox: { id: `${host}|ns|host`, children: [iface(`${host}|host|1`, 'lo'), iface(`${host}|host|2`, 'eth0\n198.18.0.1/24')] },
    hubs: [], boxes: [], floating: [] };
  for (let b = 0; b < hubs; b += 1) {
    const hub = `${host}|host|br${b}`;
    h.hubs.push({ id: hub, w: 72, h: 28, label: `br${b}\n198.18.${b}.1/24` });
    for (let i = 0; i < per; i += 1) {
      const ns = `ep${b}-${i}`;
      const eth0 = `${host}|${ns}|2`;
      h.boxes.push({ id: `${host}|ns|${ns}`, children: [iface(`${host}|${ns}|1`, 'lo'), iface(eth0, `eth0\n198.18.${b}.${i + 2}/24`)],
        attach: [{ child: eth0, hub, port: `${host}|host|p${b}-${i}` }] });
    }
    h.floating.push({ id: `${host}|host|vx${b}`, w: 32, h: 32, label: `vx${b}\nVNI ${b}`, hub });
  }
  for (let r = 0; r < routers; r += 1) {
    const children = [iface(`${host}|r${r}|1`, 'lo')];
    const attach = [];
    for (let b = 0; b < Math.min(2, hubs); b += 1) {
      children.push(iface(`${host}|r${r}|${b + 2}`, `eth${b}`));
      attach.push({ child: `${host}|r${r}|${b + 2}`, hub: `${host}|host|br${b}`, port: `${host}|host|rp${r}-${b}` });
    }
    h.boxes.push({ id: `${host}|ns|r${r}`, children, attach });
  }
  for (let l = 0; l < loose; l += 1) h.boxes.push({ id: `${host}|ns|loose${l}`, children: [iface(`${host}|loose${l}|1`, 'lo')], attach: [] });
  return h;
}

/** Every drawn rectangle: namespace boxes (from their children) and floating nodes, with labels. */
function rectangles(host, positions) {
  const rects = [];
  const boxRect = (id, children) => {
    const g = boxGeometry(children);
    const first = positions[children[0].id];
    const cx = first.x - g.offsets[0].x;
    const cy = first.y - g.offsets[0].y;
    rects.push({ id, x1: cx - g.w / 2, x2: cx + g.w / 2, y1: cy - g.h / 2, y2: cy + g.h / 2 });
  };
  const nodeRect = (node) => {
    const e = nodeExtent(node);
    const p = positions[node.id];
    rects.push({ id: node.id, x1: p.x - e.w / 2, x2: p.x + e.w / 2, y1: p.y - node.h / 2, y2: p.y - node.h / 2 + e.h });
  };
  boxRect(host.hostBox.id, host.hostBox.children);
  host.hubs.forEach(nodeRect);
  host.floating.forEach(nodeRect);
  for (const box of host.boxes) {
    boxRect(box.id, box.children);
    for (const a of box.attach) nodeRect({ id: a.port, w: 22, h: 22, label: a.port.split('|').pop() });
  }
  return rects;
}

function overlapping(rects) {
  const pairs = [];
  for (let i = 0; i < rects.length; i += 1) {
    for (let j = i + 1; j < rects.length; j += 1) {
      const a = rects[i];
      const b = rects[j];
      if (a.x1 < b.x2 && b.x1 < a.x2 && a.y1 < b.y2 && b.y1 < a.y2) pairs.push([a.id, b.id]);
    }
  }
  return pairs;
}

test('every leaf gets a position and nothing overlaps, labels included', () => {
  const host = scene();
  const positions = layoutScene({ hosts: [host] });
  const leaves = rectangles(host, positions);
  assert.ok(leaves.length > 60);
  for (const box of host.boxes) for (const child of box.children) assert.ok(positions[child.id], child.id);
  assert.deepEqual(overlapping(leaves), []);
});

test('the same scene in any order gives the same positions', () => {
  const a = layoutScene({ hosts: [scene()] });
  const shuffled = scene();
  shuffled.boxes.reverse();
  shuffled.hubs.reverse();
  assert.deepEqual(layoutScene({ hosts: [shuffled] }), a);
});

test('endpoints stand around their own network, routers between the networks, the host on the left', () => {
  const host = scene();
  const p = layoutScene({ hosts: [host] });
  const [hub0, hub1] = [p['alpha|host|br0'], p['alpha|host|br1']];
  assert.ok(hub0.x < hub1.x);
  for (const box of host.boxes.filter((b) => b.attach.length === 1)) {
    const own = p[box.attach[0].hub];
    const other = own === hub0 ? hub1 : hub0;
    const at = p[box.children[1].id];
    assert.ok(Math.abs(at.x - own.x) < Math.abs(at.x - other.x), `${box.id} nearer its own hub`);
    // Its port is between the box and the hub.
    const port = p[box.attach[0].port];
    assert.ok(Math.min(at.y, own.y) < port.y && port.y < Math.max(at.y, own.y), `${box.id} port between`);
  }
  for (const r of ['alpha|r0|2', 'alpha|r1|2']) assert.ok(hub0.x < p[r].x && p[r].x < hub1.x, r);
  assert.ok(p['alpha|host|2'].x < hub0.x);
  // Loose namespaces underneath everything else.
  const lowest = Math.max(...host.boxes.filter((b) => b.attach.length).map((b) => p[b.children[0].id].y));
  assert.ok(p['alpha|loose0|1'].y > lowest);
});

test('hosts stand side by side without overlapping', () => {
  const alpha = scene({ per: 5 });
  const beta = scene({ per: 8, host: 'beta' });
  const p = layoutScene({ hosts: [beta, alpha] });
  const right = Math.max(...rectangles(alpha, p).map((r) => r.x2));
  const left = Math.min(...rectangles(beta, p).map((r) => r.x1));
  assert.ok(right < left, `${right} < ${left}`);
});

test('a host with nothing to show gets a place of its own', () => {
  const p = layoutScene({ hosts: [scene({ per: 2 }), { id: 'empty', hostBox: null, hubs: [], boxes: [], floating: [] }] });
  assert.ok(p.empty);
  assert.ok(p.empty.x > p['alpha|host|br1'].x);
});

test('placeFree finds the nearest free spot and never overlaps what is there', () => {
  const occupancy = new Occupancy([{ x1: -50, x2: 50, y1: -50, y2: 50 }]);
  const spots = [];
  for (let i = 0; i < 40; i += 1) spots.push(placeFree(occupancy, { w: 60, h: 40 }, { x: 0, y: 0 }, { margin: 5 }));
  const rects = spots.map((c, i) => ({ id: i, x1: c.x - 35, x2: c.x + 35, y1: c.y - 25, y2: c.y + 25 }));
  assert.deepEqual(overlapping([...rects, { id: 'fixed', x1: -50, x2: 50, y1: -50, y2: 50 }]), []);
  // The first one is right next to the fixed box, below it.
  assert.ok(Math.hypot(spots[0].x, spots[0].y) < 120 && spots[0].y > 0, JSON.stringify(spots[0]));
});
