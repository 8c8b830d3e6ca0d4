// The Cytoscape graph: what element each model id stands for, reconciling dirty ids with what is
// drawn, the scene the layout reads, and placing what is new without moving anything else.
//
// Graph shape: a host box holds its namespaces' boxes, and each box its interfaces; a bridge of the
// host namespace (a network's hub) and its ports float in the host box, outside the host
// namespace's box, so endpoints can stand around their network; folded endpoints are one group node.
// Tunnels join the VXLAN devices of different hosts (model.js deriveTunnels); a remote VTEP no known
// host has is a small node of its own beside the device pointing at it.

import { formatTime, plural } from './dom.js';
import { boxGeometry, layoutScene, nodeExtent, Occupancy, placeFree } from './layout.js';
import { linkDown, linkKind, linkLabels, shapingText } from './links.js';
import { byNaturalOrder, groupBridge, hostStatus, ids, serviceStatus } from './model.js';
import { badgeImage, labelWidth, nodeSize, stylesheet } from './style.js';

const cytoscape = window.cytoscape;

// Work around a Cytoscape 3.34 performance bug. Drawing a node without a background image flips
// its internal "backgrounding" flag twice per draw (drawImages runs once per containment pass),
// and every flip calls node.updateStyle(false), which marks all its compound ancestors for
// restyling; restyling a host or namespace box walks every descendant, so drawing n new nodes cost
// O(n²) (2000 ungrouped namespaces: ~50 s). updateStyle(false) only serves the :backgrounding and
// :grabbed states, which this page's stylesheet never selects on, so those calls are dropped.
// Element.prototype is Collection.prototype in Cytoscape, so this covers single elements too.
const collectionPrototype = Object.getPrototypeOf(cytoscape({ headless: true }).collection());
const updateStyle = collectionPrototype.updateStyle;
collectionPrototype.updateStyle = function (notifyRenderer) {
  return notifyRenderer === false ? this : updateStyle.apply(this, arguments);
};

/**
 * The graph in `container`. `webgl` switches Cytoscape's WebGL renderer on (3.31+; `?renderer=webgl`
 * on the page): measured by `make bench` against the canvas renderer, which stays the default.
 */
export function createGraph(container, { webgl = false } = {}) {
  return cytoscape({
    container,
    ...(webgl ? { renderer: { name: 'canvas', webgl: true } } : {}),
    style: stylesheet(false, true),
    selectionType: 'single',
    boxSelectionEnabled: false,
    minZoom: 0.05,
    maxZoom: 4,
  });
}

// Classes set by filters and search, not by the model.
const VIEW_CLASSES = new Set(['filtered', 'match', 'dimmed', 'lit']);

/** toggleClass restyles the element (and its whole subtree) even when nothing changes: skip that. */
export function setClass(ele, cls, on) {
  if (ele.hasClass(cls) !== on) ele.toggleClass(cls, on);
}

function hostLabel(h) {
  const status = hostStatus(h);
  // Overlay findings with no VXLAN device to show them on (the device is missing): on the host.
  const findings = h.overlayHostFindings().length;
  const hostMode = h.containersIn('host').map((c) => c.name);
  const extra = (findings ? ` · ${plural(findings, 'overlay finding')}` : '') + (hostMode.length ? ` · host mode: ${hostMode.join(', ')}` : '');
  if (status === 'online') return `${h.name}${extra}`;
  const why = status === 'offline' && h.lastSeen ? `offline since ${formatTime(h.lastSeen)}` : status;
  return `${h.name} (${why})${extra}`;
}

/**
 * A namespace's name, its kind when not a plain named one, and the nodes sharing it when several;
 * a container's namespace is named by its containers (several in container: mode) first.
 */
function nsLabel(h, netns) {
  const containers = h.containersIn(netns);
  if (containers.length) {
    const projects = [...new Set(containers.map((c) => c.project).filter(Boolean))];
    const compose = projects.length ? `\ncompose ${projects.join(', ')}` : '';
    return `${containers.map((c) => c.name).join(' + ')} [container]${compose}\n${netns}`;
  }
  const overlay = h.dockerOverlays.get(netns);
  if (overlay) {
    const peers = overlay.peers.map((p) => p.value).join(', ');
    return `${overlay.name} [docker overlay]\n${netns}${peers ? `\npeers ${peers}` : ''}`;
  }
  const kind = h.namespaces.get(netns)?.kind;
  const name = kind === 'docker' || kind === 'process' ? `${netns} [${kind}]` : netns;
  const nodes = [...h.nodeNames(netns)].sort(byNaturalOrder);
  return nodes.length > 1 ? `${name} · nodes ${nodes.join(', ')}` : name;
}

/** The class marking an element of a desired topology that needs attention (see style.js). */
function desiredClass(desired) {
  if (!desired) return '';
  if (desired.status === 'error' || desired.status === 'drifted') return ' desired-problem';
  return ['pending', 'applying', 'waiting', 'changed'].includes(desired.status) ? ' desired-busy' : '';
}

/** What the graph should hold for one id: a Cytoscape element definition, or null for nothing. */
function nodeSpec({ h, type, key }) {
  const host = h.name;
  if (type === 'host') {
    return { data: { id: host, type, host, label: hostLabel(h) }, classes: h.online ? 'host' : 'host offline' };
  }
  if (type === 'ns') {
    if ((!h.namespaces.has(key) && !h.nsLinks.has(key)) || h.folded.has(key)) return null;
    return {
      data: { id: ids.ns(host, key), parent: host, type: 'namespace', host, netns: key, label: nsLabel(h, key) },
      classes: `namespace ns-${h.nsKind(key) ?? 'unknown'}${desiredClass(h.nsDesired(key))}${h.containersByNs.has(key) ? ' container' : ''}`,
    };
  }
  if (type === 'link') {
    if (!h.linkVisible(key)) return null;
    const link = h.links.get(key);
    const kind = linkKind(link);
    const floats = h.floats(link);
    const { full, brief } = linkLabels(link, [...(h.linkAddresses.get(key)?.values() ?? [])]);
    const network = h.dockerNetworkOf(link);
    const project = network?.project ? ` · compose ${network.project}` : '';
    const label = network ? `${network.name} [docker ${network.driver}${project}]\n${full}` : full;
    const data = { id: key, parent: floats ? host : ids.ns(host, link.netns), type, host, netns: link.netns, kind, label, brief };
    let overlay = '';
    if (link.vxlan) {
      // The findings of the overlay check on this host, as a badge (always written: a data key
      // left out would keep its old value).
      const findings = h.overlayOf(key)?.findings.length ?? 0;
      data.findings = findings;
      data.badge = findings ? badgeImage(findings) : null;
      if (findings) overlay = ' overlay-findings';
    }
    return {
      data,
      classes: `link k-${kind}${floats && kind === 'bridge' ? ' hub' : ''}${linkDown(link) ? ' down' : ''}${link.shaping ? ' shaped' : ''}${desiredClass(h.desiredOf(link))}${overlay}${h.dockerDrops(link) ? ' docker-drops' : ''}`,
    };
  }
  if (type === 'vtep') {
    const vtep = h.vteps.get(key);
    if (!vtep) return null;
    const { address, device, bridge } = vtep;
    return {
      data: { id: key, parent: host, type, host, kind: 'vxlan', address, device, bridge, label: `VTEP ${address}\n(unknown)`, brief: `VTEP ${address}` },
      classes: 'vtep',
    };
  }
  if (type === 'service') {
    const service = h.services.get(key);
    if (!service) return null;
    const status = serviceStatus(service.instances);
    const serving = [...service.instances.values()].filter((i) => i.status !== 'critical').length;
    const label = `${service.name} [service]${service.vip ? `\nVIP ${service.vip}` : ''}\n${serving}/${service.instances.size} serving`;
    const bridge = h.byName.get(`host|${service.bridge}`) ?? null;
    return {
      data: { id: key, parent: host, type, host, kind: 'service', network: service.network, bridge, label, brief: service.name, status },
      classes: `service svc-${status}`,
    };
  }
  // type === 'group'
  const members = h.groups.get(key);
  if (!members) return null;
  const { total, down } = h.groupCounts(key);
  const label = `${total} endpoint${total === 1 ? '' : 's'}${down ? `\n${down} down` : ''}`;
  return { data: { id: key, parent: host, type, host, bridge: groupBridge(key), count: total, label }, classes: 'group' };
}

/** Edges a node owns: its port edge to its bridge and its veth edge (links), its bridge edge (groups). */
function ownedEdges(cy, h, id, type) {
  const host = h.name;
  const present = (nodeId) => cy.getElementById(nodeId).nonempty();
  const edges = [];
  if (type === 'group') {
    const bridge = groupBridge(id);
    if (present(bridge)) {
      edges.push({ data: { id: `grp:${id}`, source: id, target: bridge, kind: 'group', owner: id, host }, classes: 'group-edge' });
    }
    return edges;
  }
  const link = h.links.get(id);
  const bridge = h.bridgeOf(link);
  if (bridge && bridge !== id && present(bridge)) {
    const down = linkDown(link) || linkDown(h.links.get(bridge));
    edges.push({ data: { id: `port:${id}`, source: id, target: bridge, kind: 'port', owner: id, host }, classes: down ? 'port down' : 'port' });
  }
  const peer = h.peerId(link);
  if (peer && present(peer)) edges.push(vethEdge(host, link, id, h.links.get(peer), peer));
  return edges;
}

/**
 * A service's edges to its instances: to the namespace box of each (or the group it is folded in),
 * to the network's bridge for a bare address; coloured by that instance's health.
 */
function serviceEdges(cy, h, id) {
  const service = h.services.get(id);
  if (!service) return [];
  const edges = new Map();
  for (const i of service.instances.values()) {
    const folded = i.netns ? h.folded.get(i.netns) : null;
    const target = i.netns ? (folded ? folded.group : ids.ns(h.name, i.netns)) : h.byName.get(`host|${i.bridge}`);
    if (!target || cy.getElementById(target).empty()) continue;
    const edgeId = `svc:${id}~${target}`;
    const worst = edges.get(edgeId)?.data.status === 'critical' ? 'critical' : i.status;
    edges.set(edgeId, { data: { id: edgeId, source: id, target, kind: 'service', owner: id, host: h.name, status: worst }, classes: `service-edge svc-${worst}` });
  }
  return [...edges.values()];
}

/** The edge of one tunnel (model.js deriveTunnels): dashed, labelled with its VNI, arrowed when one-way. */
function tunnelEdge(t) {
  const classes = ['tunnel'];
  if (t.unknown) classes.push('tunnel-unknown');
  else if (!t.backward) classes.push('oneway-forward');
  else if (!t.forward) classes.push('oneway-backward');
  // Hosts stand side by side: a tunnel to another host arcs above the hub rows (a device sits on its
  // bridge's row), higher the more hosts it passes, not through them.
  if (t.gap > 0) classes.push(`arc-${Math.min(4, t.gap)}`);
  return {
    data: { id: t.id, source: t.source, target: t.target, kind: 'tunnel', vni: t.vni, label: `VNI ${t.vni}` },
    classes: classes.join(' '),
  };
}

/** Set an element's model classes to `classes` (a string), keeping the view's (filters, search). */
function syncClasses(ele, classes) {
  const wanted = new Set(classes.split(' '));
  const stale = ele.classes().filter((c) => !wanted.has(c) && !VIEW_CLASSES.has(c));
  const missing = [...wanted].filter((c) => !ele.hasClass(c));
  if (stale.length) ele.removeClass(stale.join(' '));
  if (missing.length) ele.addClass(missing.join(' '));
}

/** The edge between a veth's ends: down when either is, labelled with the shaping of each shaped end
 * (a root qdisc shapes what that end sends). */
function vethEdge(host, link, id, peerLink, peer) {
  const [source, target] = id < peer ? [id, peer] : [peer, id];
  const shaped = [link, peerLink].filter((end) => end?.shaping).map((end) => `${end.name} ⏱ ${shapingText(end.shaping)}`);
  const classes = ['veth'];
  if (linkDown(link) || linkDown(peerLink)) classes.push('down');
  if (shaped.length) classes.push('shaped');
  return { data: { id: `veth:${source}~${target}`, source, target, kind: 'veth', host, label: shaped.join('\n') }, classes: classes.join(' ') };
}

/**
 * Apply a changed spec to a node already drawn. Only real changes are written: Cytoscape restyles
 * a node and all its descendants on any data write, which is costly for a host or namespace box.
 * Returns the node, moved to its new parent when that changed (a port that joined a bridge).
 */
function updateNode(node, spec) {
  const { parent, ...data } = spec.data;
  if (parent !== undefined && node.data('parent') !== parent) node = node.move({ parent });
  const current = node.data();
  const changed = Object.fromEntries(Object.entries(data).filter(([key, value]) => current[key] !== value));
  if (Object.keys(changed).length) node.data(changed);
  syncClasses(node, spec.classes);
  return node;
}

/**
 * Bring the graph in line with the model for every dirty id. Returns the nodes that need a place:
 * those added, and those moved to another box.
 */
export function reconcile(cy, dirty) {
  const byLevel = [[], [], []]; // hosts, then namespaces, then links and groups: parents first
  const level = { host: 0, ns: 1, link: 2, group: 2, vtep: 2, service: 2 };
  const removals = [];
  let placeless = cy.collection();
  for (const [id, entry] of dirty) {
    if (entry.type === 'tunnel') continue; // an edge: below, once its ends are drawn
    const spec = nodeSpec(entry);
    const node = cy.getElementById(id);
    if (!spec) {
      if (node.nonempty()) removals.push(node);
    } else if (node.empty()) {
      byLevel[level[entry.type]].push(spec);
    } else {
      const moved = node.data('parent') !== spec.data.parent && spec.data.parent !== undefined;
      const now = updateNode(node, spec);
      if (moved) placeless = placeless.union(now);
    }
  }
  for (const node of removals) {
    if (!node.removed()) node.remove(); // removing a namespace already removed its folded links
  }
  for (const specs of byLevel) {
    // Start where the parent is (not at the origin, which would stretch a box already drawn) until
    // placed.
    const positioned = specs.map((spec) => {
      const parent = spec.data.parent ? cy.getElementById(spec.data.parent) : null;
      return { group: 'nodes', ...spec, position: parent?.nonempty() ? { ...parent.position() } : { x: 0, y: 0 } };
    });
    placeless = placeless.union(cy.add(positioned));
  }
  // Edges: every dirty link or group re-derives the edges it owns (a veth edge is owned by both ends).
  const newEdges = new Map();
  for (const [id, { h, type }] of dirty) {
    if (type !== 'link' && type !== 'group') continue;
    const node = cy.getElementById(id);
    if (node.empty()) continue;
    const want = new Map(ownedEdges(cy, h, id, type).map((edge) => [edge.data.id, edge]));
    node.connectedEdges().forEach((edge) => {
      if (want.has(edge.id())) return;
      if (edge.data('owner') === id) edge.remove();
      else if (edge.data('kind') === 'veth') {
        // Kept while either end still names the other as its peer.
        const other = edge.source().id() === id ? edge.target().id() : edge.source().id();
        if (h.peerId(h.links.get(id)) !== other && h.peerId(h.links.get(other)) !== id) edge.remove();
      }
    });
    for (const [edgeId, edge] of want) {
      const drawnEdge = cy.getElementById(edgeId);
      if (drawnEdge.empty()) newEdges.set(edgeId, { group: 'edges', ...edge });
      else {
        syncClasses(drawnEdge, edge.classes); // an end went up or down, or was shaped
        if ((drawnEdge.data('label') ?? '') !== (edge.data.label ?? '')) drawnEdge.data('label', edge.data.label ?? '');
      }
    }
  }
  // Services: their edges to the boxes of their instances, derived again whenever the service is dirty.
  for (const [id, { h, type }] of dirty) {
    if (type !== 'service') continue;
    const node = cy.getElementById(id);
    if (node.empty()) continue;
    const want = new Map(serviceEdges(cy, h, id).map((edge) => [edge.data.id, edge]));
    node.connectedEdges().forEach((edge) => {
      if (!want.has(edge.id())) edge.remove();
    });
    for (const [edgeId, edge] of want) {
      const drawnEdge = cy.getElementById(edgeId);
      if (drawnEdge.empty()) newEdges.set(edgeId, { group: 'edges', ...edge });
      else syncClasses(drawnEdge, edge.classes);
    }
  }
  // Tunnels: drawn while both ends are (a device drawn again re-marks its tunnels: model.takeDirty).
  for (const [id, { type, tunnel }] of dirty) {
    if (type !== 'tunnel') continue;
    const drawnEdge = cy.getElementById(id);
    const ends = tunnel && cy.getElementById(tunnel.source).nonempty() && cy.getElementById(tunnel.target).nonempty();
    if (!ends) {
      if (drawnEdge.nonempty()) drawnEdge.remove();
      continue;
    }
    const edge = tunnelEdge(tunnel);
    if (drawnEdge.empty()) {
      newEdges.set(id, { group: 'edges', ...edge });
    } else {
      if (drawnEdge.data('label') !== edge.data.label) drawnEdge.data({ vni: edge.data.vni, label: edge.data.label });
      syncClasses(drawnEdge, edge.classes);
    }
  }
  cy.add([...newEdges.values()]);
  return placeless.filter((node) => !node.removed());
}

// ---------------------------------------------------------------------------------------------
// The layout's scene

/** A leaf as the layout sees it: from data and classes only, so it works inside a batch. */
function leaf(node) {
  const [w, h] = nodeSize(node);
  const maxWidth = labelWidth(node);
  return { id: node.id(), w, h, label: node.data('label') ?? '', ...(maxWidth ? { maxWidth } : {}) };
}

/** A box's interfaces in the order the layout draws them: lo first, then by id. */
function inDrawingOrder(box) {
  const lo = (node) => (node.data('kind') === 'lo' ? -1 : 0);
  return box.children().sort((a, b) => lo(a) - lo(b) || byNaturalOrder(a.id(), b.id()));
}

function childrenOf(box) {
  return inDrawingOrder(box).map(leaf);
}

/** One host of the scene layout.js lays out (see layoutHost there), read from what is drawn. */
function sceneHost(cy, model, hostNode) {
  const h = model.hosts[hostNode.id()];
  const host = { id: hostNode.id(), hostBox: null, hubs: [], boxes: [], floating: [] };
  const hubBoxes = new Set();
  const attached = new Set();
  const inHubBox = (id) => {
    const link = h.links.get(id);
    return link && hubBoxes.has(ids.ns(h.name, link.netns)) ? ids.ns(h.name, link.netns) : null;
  };
  const boxes = hostNode.children().filter((n) => n.isParent());
  boxes.forEach((box) => {
    if (box.children('.k-bridge').nonempty() && h.nsKind(box.data('netns')) !== 'host') hubBoxes.add(box.id());
  });
  boxes.forEach((box) => {
    if (h.nsKind(box.data('netns')) === 'host') {
      host.hostBox = { id: box.id(), children: childrenOf(box) };
    } else if (hubBoxes.has(box.id())) {
      host.hubs.push({ id: box.id(), box: true, children: childrenOf(box) });
    } else {
      const attach = [];
      box.children().forEach((child) => {
        const peerId = h.peerId(h.links.get(child.id()));
        const peerLink = peerId && h.links.get(peerId);
        if (!peerLink) return;
        if (h.floats(peerLink) && peerLink.kind !== 'bridge' && cy.getElementById(peerId).parent().same(hostNode)) {
          attach.push({ child: child.id(), hub: h.bridgeOf(peerLink), port: peerId });
          attached.add(peerId);
        } else if (inHubBox(peerId)) {
          attach.push({ child: child.id(), hub: inHubBox(peerId), port: null });
        }
      });
      host.boxes.push({ id: box.id(), children: childrenOf(box), attach });
    }
  });
  hostNode.children().filter((n) => n.isChildless()).forEach((node) => {
    if (node.hasClass('hub')) host.hubs.push(leaf(node));
    else if (!attached.has(node.id())) {
      const { type } = node.data();
      const hub = ['group', 'vtep', 'service'].includes(type) ? node.data('bridge') : h.bridgeOf(h.links.get(node.id()));
      host.floating.push({ ...leaf(node), hub });
    }
  });
  return host;
}

/** The whole layout of the given hosts, computed by `compute` (a Web Worker, or layoutScene itself). */
export async function layoutHosts(cy, model, hostNodes, compute = layoutScene) {
  const scene = { hosts: hostNodes.map((node) => sceneHost(cy, model, node)) };
  return compute(scene);
}

export function applyPositions(cy, positions, { dx = 0, dy = 0 } = {}) {
  cy.batch(() => {
    for (const [id, p] of Object.entries(positions)) {
      const node = cy.getElementById(id);
      if (node.nonempty() && node.isChildless()) node.position({ x: p.x + dx, y: p.y + dy });
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Placing what is new, next to its neighbours, without moving or overlapping anything

const BOX_MARGIN = 24;

function rect(box) {
  return { x1: box.x1, x2: box.x2, y1: box.y1, y2: box.y2 };
}

/**
 * Place `nodes` (new or moved leaves) next to what they connect to: a new namespace box as a whole
 * near its network's hub (or the interface its veth joins), a port between its endpoint and its
 * hub, a new interface of a box already drawn at the end of its row, a group next to its bridge.
 * Nothing already placed moves. Returns the ids placed.
 */
export function placeNew(cy, model, nodes) {
  const fresh = new Set(nodes.map((node) => node.id()));
  if (!fresh.size) return fresh;
  const occupancy = new Occupancy();
  cy.nodes().forEach((node) => {
    if (node.data('type') === 'host' || fresh.has(node.id())) return;
    if (node.isParent()) {
      if (node.children().some((child) => !fresh.has(child.id()))) occupancy.add(rect(node.boundingBox()));
    } else if (node.parent().data('type') === 'host') {
      occupancy.add(rect(node.boundingBox()));
    }
  });
  const placed = (node) => !fresh.has(node.id());
  const newBoxes = new Map(); // box id -> its new children
  const later = []; // floating nodes: placed once the boxes they join are
  for (const node of nodes) {
    const parent = node.parent();
    if (parent.data('type') === 'namespace') {
      if (!newBoxes.has(parent.id())) newBoxes.set(parent.id(), []);
      newBoxes.get(parent.id()).push(node);
    } else later.push(node);
  }
  for (const [boxId, children] of newBoxes) {
    const box = cy.getElementById(boxId);
    const old = box.children().filter(placed);
    if (old.nonempty()) {
      // Grow the row of a box already drawn.
      let right = old.boundingBox().x2;
      const y = old[0].position('y');
      for (const child of children) {
        const e = nodeExtent(leaf(child));
        child.position({ x: right + 16 + e.w / 2, y });
        right += 16 + e.w;
      }
      continue;
    }
    const ordered = inDrawingOrder(box);
    const geometry = boxGeometry(ordered.map(leaf));
    const size = { w: geometry.w, h: geometry.h };
    const centre = placeFree(occupancy, size, anchorOf(cy, model, box, placed), { margin: BOX_MARGIN });
    ordered.forEach((child, i) => child.position({ x: centre.x + geometry.offsets[i].x, y: centre.y + geometry.offsets[i].y }));
  }
  for (const node of later) {
    const e = nodeExtent(leaf(node));
    node.position(placeFree(occupancy, e, floatingAnchor(cy, model, node, fresh), { margin: 12, step: 24 }));
    fresh.delete(node.id());
  }
  return new Set(nodes.map((node) => node.id()));
}

/** Where a new namespace box should go: by its network's hub, by its veth's peer, else by its host. */
function anchorOf(cy, model, box, placed) {
  const h = model.hosts[box.data('host')];
  const points = [];
  box.children().forEach((child) => {
    const peerId = h.peerId(h.links.get(child.id()));
    const peerLink = peerId && h.links.get(peerId);
    if (!peerLink) return;
    const bridge = cy.getElementById(h.bridgeOf(peerLink) ?? '');
    const peerNode = cy.getElementById(peerId);
    if (bridge.nonempty() && placed(bridge)) points.push(bridge.position());
    else if (peerNode.nonempty() && placed(peerNode)) points.push(peerNode.position());
  });
  if (points.length) return { x: mean(points.map((p) => p.x)), y: mean(points.map((p) => p.y)) };
  return hostCorner(cy, box.data('host'), placed);
}

function floatingAnchor(cy, model, node, fresh) {
  const h = model.hosts[node.data('host')];
  const placed = (other) => !fresh.has(other.id());
  const corner = () => hostCorner(cy, node.data('host'), placed);
  if (node.data('type') === 'group') return positionOr(cy, node.data('bridge'), corner());
  if (node.data('type') === 'vtep') return positionOr(cy, node.data('device'), corner()); // beside the device pointing at it
  if (node.data('type') === 'service') return positionOr(cy, node.data('bridge') ?? '', corner()); // by its network
  const link = h.links.get(node.id());
  const peerNode = cy.getElementById(h.peerId(link) ?? '');
  const bridge = cy.getElementById(h.bridgeOf(link) ?? '');
  if (peerNode.nonempty() && bridge.nonempty() && !fresh.has(bridge.id())) {
    const p = peerNode.position();
    const b = bridge.position();
    const d = Math.hypot(b.x - p.x, b.y - p.y) || 1;
    const step = Math.min(d / 2, 60);
    return { x: p.x + ((b.x - p.x) / d) * step, y: p.y + ((b.y - p.y) / d) * step };
  }
  if (peerNode.nonempty()) return peerNode.position();
  if (bridge.nonempty()) return bridge.position();
  return corner();
}

function positionOr(cy, id, fallback) {
  const node = cy.getElementById(id);
  return node.nonempty() ? node.position() : fallback;
}

/** Just below the host's placed content (or the origin, for a host with nothing placed yet). */
function hostCorner(cy, host, placed) {
  const hostNode = cy.getElementById(host);
  const placedLeaves = hostNode.descendants().filter((n) => n.isChildless() && placed(n));
  if (placedLeaves.empty()) return { x: 0, y: 0 };
  const box = placedLeaves.boundingBox();
  return { x: box.x1 + 60, y: box.y2 + 80 };
}

function mean(values) {
  return values.reduce((a, b) => a + b, 0) / values.length;
}
