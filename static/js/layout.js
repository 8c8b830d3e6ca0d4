// The network-centric layout, as people draw container networks on a whiteboard.
//
// Per host: every network (a bridge of the host namespace, or a namespace holding a bridge) is a
// hub with its endpoints in rows above and below it, each endpoint's bridge port drawn between the
// endpoint and the hub; namespaces on several networks sit in a lane between those networks; the
// host's own interfaces are in a box on the left; namespaces on no network in rows underneath.
// Hosts stand side by side. Every size includes the element's label, so nothing overlaps at any zoom.
//
// Pure and deterministic (the same scene always gives the same positions): it runs in a Web Worker
// (layout-worker.js) and under `node --test`. The scene is plain data that graph.js builds from the
// drawn graph; the answer is a position per leaf node id. `placeFree` places one new box next to
// an anchor without overlapping anything already drawn.

const PAD = 14; // a compound box's padding (the stylesheet's)
const TITLE = 18; // a namespace box's label, above the box
const CHILD_GAP = 16;
const ROW_CHILDREN = 6; // interfaces per row in a box
const PORT_SPACE = 56; // between an endpoint box and the hub's row: the port sits in it
const CELL_GAP = 28;
const LANE_PORT = 44; // from a lane's box to its ports, beside it
const LANE_GAP = 50;
const HOST_GAP = 160; // between hosts' boxes
const AREA_GAP = 80; // between the host namespace, the networks and the rows underneath

const LABEL = { char: 6.6, line: 15, maxWidth: 140, below: 4 };

/**
 * The box a node takes with its label (drawn below it, wrapped at `maxWidth`: LABEL.maxWidth unless
 * the node's look wraps its label wider, as a VXLAN device's "VNI 5000 · 198.18.254.11" line).
 */
export function nodeExtent({ w, h, label = '', maxWidth = LABEL.maxWidth }) {
  const lines = label ? label.split('\n') : [];
  const longest = Math.max(0, ...lines.map((line) => line.length));
  const labelW = Math.min(maxWidth, longest * LABEL.char);
  const wrapped = lines.reduce((n, line) => n + Math.max(1, Math.ceil((line.length * LABEL.char) / maxWidth)), 0);
  return { w: Math.max(w, labelW), h: h + (wrapped ? LABEL.below + wrapped * LABEL.line : 0), nodeH: h };
}

/**
 * A namespace box's children in rows: their offsets from the box centre and the box size (its
 * title above included in `h`, with `top` the distance from the centre to the box's upper edge).
 */
export function boxGeometry(children) {
  const extents = children.map(nodeExtent);
  const rows = [];
  for (let i = 0; i < extents.length; i += ROW_CHILDREN) rows.push(extents.slice(i, i + ROW_CHILDREN));
  const rowSizes = rows.map((row) => ({
    w: row.reduce((sum, e) => sum + e.w, 0) + CHILD_GAP * (row.length - 1),
    h: Math.max(...row.map((e) => e.h)),
  }));
  const innerW = Math.max(0, ...rowSizes.map((r) => r.w));
  const innerH = rowSizes.reduce((sum, r) => sum + r.h, 0) + CHILD_GAP * Math.max(0, rows.length - 1);
  const w = innerW + 2 * PAD;
  const h = innerH + 2 * PAD + TITLE;
  const offsets = [];
  let y = -h / 2 + TITLE + PAD;
  rows.forEach((row, r) => {
    let x = -rowSizes[r].w / 2;
    for (const e of row) {
      offsets.push({ x: x + e.w / 2, y: y + e.nodeH / 2 });
      x += e.w + CHILD_GAP;
    }
    y += rowSizes[r].h + CHILD_GAP;
  });
  return { w, h, offsets };
}

function place(positions, children, geometry, centre) {
  children.forEach((child, i) => {
    positions[child.id] = { x: centre.x + geometry.offsets[i].x, y: centre.y + geometry.offsets[i].y };
  });
}

/** A grid of equal cells: `count` cells in rows of `columns`, centred on x = 0, row 0 first. */
function gridCell(i, columns, count, cell) {
  const row = Math.floor(i / columns);
  const inRow = Math.min(columns, count - row * columns);
  return { x: (i % columns - (inRow - 1) / 2) * cell.w, row };
}

/**
 * One network: the hub at (0, 0), its single-network endpoints in rows above and below, each with
 * its port between it and the hub, and the hub's other nodes (folded endpoints, ports without an
 * endpoint box) on the hub's row. Returns the bounding box and fills `positions`.
 */
function layoutCluster(hub, members, extras, positions, origin) {
  const hubExtent = hub.box ? { w: hub.geometry.w, h: hub.geometry.h } : nodeExtent(hub);
  const extraExtents = extras.map(nodeExtent);
  // Every row has its own lane for its ports, between it and the row nearer the hub.
  const cell = {
    w: Math.max(90, ...members.map((m) => m.geometry.w)) + CELL_GAP,
    h: Math.max(40, ...members.map((m) => m.geometry.h)) + CELL_GAP + PORT_SPACE,
  };
  const n = members.length;
  const columns = Math.max(1, Math.ceil(Math.sqrt((n * cell.h) / cell.w)));
  const rows = Math.ceil(n / columns);
  const above = Math.ceil(rows / 2);
  const perSide = [Math.min(n, above * columns), n - Math.min(n, above * columns)];
  // The hub's row: the hub, then extras alternating right and left.
  const rowH = Math.max(hubExtent.h, ...extraExtents.map((e) => e.h));
  if (hub.box) place(positions, hub.children, hub.geometry, origin);
  else positions[hub.id] = { ...origin };
  let right = hubExtent.w / 2;
  let left = -hubExtent.w / 2;
  extras.forEach((extra, i) => {
    const e = extraExtents[i];
    let x;
    if (i % 2 === 0) {
      x = right + CELL_GAP + e.w / 2;
      right = x + e.w / 2;
    } else {
      x = left - CELL_GAP - e.w / 2;
      left = x - e.w / 2;
    }
    positions[extra.id] = { x: origin.x + x, y: origin.y };
  });
  // Endpoints: side 0 above the hub (row 0 nearest), side 1 below.
  let index = 0;
  for (const side of [0, 1]) {
    const sign = side === 0 ? -1 : 1;
    const count = perSide[side];
    for (let i = 0; i < count; i += 1, index += 1) {
      const member = members[index];
      const { x, row } = gridCell(i, columns, count, cell);
      // The box at the far end of its cell, its ports in the near end (towards the hub).
      const far = rowH / 2 + cell.h * (row + 1) - CELL_GAP / 2 - member.geometry.h / 2;
      const centre = { x: origin.x + x, y: origin.y + sign * far };
      place(positions, member.children, member.geometry, centre);
      // Its ports between its box and the hub, under (or over) the interface they join.
      const edge = centre.y - sign * (member.geometry.h / 2);
      for (const { port, child } of member.ports) {
        positions[port] = { x: positions[child].x, y: portY(edge, -sign) };
      }
    }
  }
  const gridW = Math.min(columns, n) * cell.w;
  const halfH = rowH / 2 + (n ? cell.h * above : 0);
  const halfHBelow = rowH / 2 + (perSide[1] ? cell.h * (rows - above) : 0);
  return {
    x1: origin.x + Math.min(-gridW / 2, left),
    x2: origin.x + Math.max(gridW / 2, right),
    y1: origin.y - halfH,
    y2: origin.y + halfHBelow,
  };
}

// A port and its one-line label, centred in the PORT_SPACE lane beside a box edge.
const PORT = nodeExtent({ w: 22, h: 22, label: 'port' });

/** The y of a port in the lane from a box `edge` towards `direction` (+1 down, -1 up). */
function portY(edge, direction) {
  const top = direction > 0 ? edge + (PORT_SPACE - PORT.h) / 2 : edge - PORT_SPACE + (PORT_SPACE - PORT.h) / 2;
  return top + PORT.nodeH / 2;
}

/** Namespaces on several networks, stacked in a lane, each port on the side of its hub. */
function layoutLane(routers, hubX, positions, origin) {
  const width = Math.max(...routers.map((r) => r.geometry.w)) + 2 * (LANE_PORT + PORT_SPACE / 2);
  const total = routers.reduce((sum, r) => sum + r.geometry.h + CELL_GAP, -CELL_GAP);
  let y = origin.y - total / 2;
  const x = origin.x + width / 2;
  for (const router of routers) {
    const centre = { x, y: y + router.geometry.h / 2 };
    place(positions, router.children, router.geometry, centre);
    const bySide = new Map();
    for (const { port, child, hub } of router.ports) {
      const sign = hubX.get(hub) < x ? -1 : 1;
      const k = bySide.get(sign) ?? 0;
      bySide.set(sign, k + 1);
      positions[port] = { x: x + sign * (router.geometry.w / 2 + LANE_PORT), y: positions[child].y + k * 30 };
    }
    y += router.geometry.h + CELL_GAP;
  }
  return { x1: origin.x, x2: origin.x + width, y1: origin.y - total / 2, y2: origin.y + total / 2 };
}

/** Boxes in rows from a top-left corner (namespaces on no network, or a host's lone box). */
function layoutRows(boxes, positions, corner, maxWidth) {
  let x = corner.x;
  let y = corner.y;
  let rowH = 0;
  let right = corner.x;
  for (const box of boxes) {
    if (x > corner.x && x + box.geometry.w > corner.x + maxWidth) {
      x = corner.x;
      y += rowH + CELL_GAP;
      rowH = 0;
    }
    place(positions, box.children, box.geometry, { x: x + box.geometry.w / 2, y: y + box.geometry.h / 2 });
    x += box.geometry.w + CELL_GAP;
    right = Math.max(right, x - CELL_GAP);
    rowH = Math.max(rowH, box.geometry.h);
  }
  return { x1: corner.x, x2: right, y1: corner.y, y2: boxes.length ? y + rowH : corner.y };
}

/**
 * Lay out one host with its top-left corner at `corner`. A scene host is
 * `{id, hostBox, hubs, boxes, floating}`:
 * - hostBox: the host namespace's box `{id, children}` (its own interfaces), or null;
 * - hubs: `{id, w, h, label}` (a floating bridge) or `{id, box: true, children}` (a namespace holding a bridge);
 * - boxes: other namespace boxes `{id, children, attach: [{child, hub, port}]}` where `port` is the
 *   floating port node between `child` and `hub` (null when the port is inside the hub's box);
 * - floating: the hubs' other nodes `{id, w, h, label, hub}` (folded endpoints, ports without a box).
 * Children are `{id, w, h, label}`, in drawing order. Returns the host's bounding box.
 */
function layoutHost(host, positions, corner) {
  const hubs = [...host.hubs].sort((a, b) => byName(a.id, b.id));
  const hubIndex = new Map(hubs.map((hub, i) => [hub.id, i]));
  for (const hub of hubs) if (hub.box) hub.geometry = boxGeometry(hub.children);
  const members = new Map(hubs.map((hub) => [hub.id, []]));
  const lanes = new Map(); // index of the left hub -> routers
  const loose = [];
  for (const box of [...host.boxes].sort((a, b) => byName(a.id, b.id))) {
    box.geometry = boxGeometry(box.children);
    box.ports = box.attach.filter((a) => a.port && hubIndex.has(a.hub));
    const hubsOf = [...new Set(box.attach.map((a) => a.hub).filter((hub) => hubIndex.has(hub)))];
    if (hubsOf.length === 1) members.get(hubsOf[0]).push(box);
    else if (hubsOf.length > 1) {
      const left = Math.min(...hubsOf.map((hub) => hubIndex.get(hub)));
      if (!lanes.has(left)) lanes.set(left, []);
      lanes.get(left).push(box);
    } else loose.push(box);
  }
  const extras = new Map(hubs.map((hub) => [hub.id, []]));
  const strays = [];
  for (const node of [...host.floating].sort((a, b) => byName(a.id, b.id))) {
    if (extras.has(node.hub)) extras.get(node.hub).push(node);
    else strays.push(node);
  }
  // Left to right: the host namespace, then each network with the lane after it.
  let x = corner.x;
  const boxes = [];
  let hostBoxH = 0;
  if (host.hostBox) {
    const geometry = boxGeometry(host.hostBox.children);
    hostBoxH = geometry.h;
    place(positions, host.hostBox.children, geometry, { x: x + geometry.w / 2, y: 0 });
    boxes.push({ x1: x, x2: x + geometry.w, y1: -geometry.h / 2, y2: geometry.h / 2 });
    x += geometry.w + AREA_GAP;
  }
  const hubX = new Map();
  // Cluster widths are known only once laid out: lay each out at x = 0, then shift it into place.
  hubs.forEach((hub, i) => {
    const local = {};
    const box = layoutCluster(hub, members.get(hub.id), extras.get(hub.id), local, { x: 0, y: 0 });
    shiftInto(positions, local, x - box.x1, 0);
    hubX.set(hub.id, x - box.x1);
    boxes.push({ x1: x, x2: x + box.x2 - box.x1, y1: box.y1, y2: box.y2 });
    x += box.x2 - box.x1 + LANE_GAP;
    const routers = lanes.get(i);
    if (routers) {
      const lane = layoutLane(routers, hubX, positions, { x, y: 0 });
      boxes.push(lane);
      x = lane.x2 + LANE_GAP;
    }
  });
  // Ports of a lane point at hubs laid out after it: fix their side now that every hub has its x.
  for (const routers of lanes.values()) {
    for (const router of routers) {
      for (const { port, child, hub } of router.ports) {
        const side = hubX.get(hub) < positions[child].x ? -1 : 1;
        const centreX = positions[router.children[0].id].x - router.geometry.offsets[0].x;
        positions[port].x = centreX + side * (router.geometry.w / 2 + LANE_PORT);
      }
    }
  }
  const top = Math.min(-hostBoxH / 2, ...boxes.map((b) => b.y1));
  const right = Math.max(corner.x, ...boxes.map((b) => b.x2));
  let bottom = Math.max(hostBoxH / 2, ...boxes.map((b) => b.y2));
  // Underneath: namespaces on no network, then floating nodes whose hub is not drawn.
  if (loose.length) {
    const rows = layoutRows(loose, positions, { x: corner.x, y: bottom + AREA_GAP }, Math.max(right - corner.x, 900));
    bottom = rows.y2;
  }
  strays.forEach((node, i) => {
    positions[node.id] = { x: corner.x + i * 80, y: bottom + AREA_GAP };
  });
  if (strays.length) bottom += AREA_GAP;
  const placed = idsOf(host);
  if (!placed.length) {
    // A host with nothing to show (an agent that never reported) is a labelled box of its own.
    positions[host.id] = { x: corner.x + 80, y: corner.y + 22 };
    return { x1: corner.x, x2: corner.x + 160, y1: corner.y, y2: corner.y + 44 };
  }
  // Move the whole host so its top sits at corner.y.
  const dy = corner.y - top;
  for (const id of placed) if (positions[id]) positions[id].y += dy;
  return { x1: corner.x, x2: Math.max(right, corner.x + 200), y1: corner.y, y2: bottom + dy };
}

function shiftInto(positions, local, dx, dy) {
  for (const [id, p] of Object.entries(local)) positions[id] = { x: p.x + dx, y: p.y + dy };
}

function idsOf(host) {
  const out = [];
  const add = (nodes) => nodes.forEach((n) => out.push(n.id));
  if (host.hostBox) add(host.hostBox.children);
  for (const hub of host.hubs) (hub.box ? add(hub.children) : out.push(hub.id));
  for (const box of host.boxes) {
    add(box.children);
    box.attach.forEach((a) => a.port && out.push(a.port));
  }
  add(host.floating);
  return out;
}

/** Positions of every leaf node of the scene: `{hosts: [...]}` (see layoutHost). */
export function layoutScene(scene) {
  const positions = {};
  let x = 0;
  for (const host of [...scene.hosts].sort((a, b) => byName(a.id, b.id))) {
    const box = layoutHost(host, positions, { x, y: 0 });
    x = box.x2 + HOST_GAP;
  }
  return positions;
}

// --- placing one new thing among what is drawn -----------------------------------------------

/** Rectangles {x1, y1, x2, y2} in a coarse grid, for "does this overlap anything?" in O(1)-ish. */
export class Occupancy {
  constructor(rects = [], cell = 200) {
    this.cell = cell;
    this.grid = new Map();
    rects.forEach((rect) => this.add(rect));
  }

  *cells(rect) {
    const c = this.cell;
    for (let i = Math.floor(rect.x1 / c); i <= Math.floor(rect.x2 / c); i += 1) {
      for (let j = Math.floor(rect.y1 / c); j <= Math.floor(rect.y2 / c); j += 1) yield `${i},${j}`;
    }
  }

  add(rect) {
    for (const key of this.cells(rect)) {
      if (!this.grid.has(key)) this.grid.set(key, []);
      this.grid.get(key).push(rect);
    }
  }

  overlaps(rect) {
    for (const key of this.cells(rect)) {
      for (const other of this.grid.get(key) ?? []) {
        if (rect.x1 < other.x2 && other.x1 < rect.x2 && rect.y1 < other.y2 && other.y1 < rect.y2) return true;
      }
    }
    return false;
  }
}

/**
 * The centre nearest `anchor` (searched on rings of growing radius, `step` apart) where a `size`
 * rectangle plus `margin` on every side overlaps nothing in `occupancy`; the rectangle is added.
 */
export function placeFree(occupancy, size, anchor, { margin = CELL_GAP / 2, step = 40, startRadius = 0 } = {}) {
  const rectAt = (c) => ({
    x1: c.x - size.w / 2 - margin,
    x2: c.x + size.w / 2 + margin,
    y1: c.y - size.h / 2 - margin,
    y2: c.y + size.h / 2 + margin,
  });
  for (let radius = startRadius; ; radius += step) {
    const around = radius === 0 ? 1 : Math.max(8, Math.ceil((2 * Math.PI * radius) / step));
    for (let k = 0; k < around; k += 1) {
      // Start below the anchor and go round: new endpoints grow a network downwards first.
      const angle = Math.PI / 2 + (2 * Math.PI * k) / around;
      const centre = { x: anchor.x + radius * Math.cos(angle), y: anchor.y + radius * Math.sin(angle) };
      const rect = rectAt(centre);
      if (!occupancy.overlaps(rect)) {
        occupancy.add(rect);
        return centre;
      }
    }
  }
}

// One collator: localeCompare with options builds a new one per call (~100x slower in sorts).
const NATURAL = new Intl.Collator(undefined, { numeric: true });

function byName(a, b) {
  return NATURAL.compare(a, b);
}
