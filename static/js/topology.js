// Switchboard topology page: a live graph of every host's namespaces, interfaces, bridges and veths.
//
// How it works:
// - Frames from the browser socket (docs/agent-protocol.md, "Browser socket") update one HostModel
//   per host: the state exactly as the server holds it, plus a few indexes (links by name, ports by
//   bridge, links by namespace).
// - Every model change marks the ids of the graph elements it may affect as dirty. One flush per
//   animation frame reconciles only those ids with the Cytoscape graph, so a delta never rebuilds
//   the graph, and a snapshot for a host already shown is diffed against the held state first.
// - A full layout runs once, on the first draw (and when the user asks); later nodes are placed
//   next to a neighbour and nothing already on screen moves.
// - Beyond LARGE_GRAPH_NODES nodes the drawing is simplified and, unless the user says otherwise,
//   namespaces that hold just one veth on a bridge are folded into one "N endpoints" node per
//   bridge (click to expand).
//
// Needs cytoscape, layout-base, cose-base, cytoscape-fcose and cytoscape-svg loaded before it
// (see templates/topology/_scripts.html). The tables beside the graph are static/js/tables.js.

import { aliasNames, linkDown, linkKind, linkLabels } from './links.js';
import { createTableView } from './tables.js';

const cytoscape = window.cytoscape;

const STATE_KINDS = ['namespaces', 'links', 'addresses', 'routes', 'neighbours', 'fdb'];
// Interface kinds as drawn and filtered, with their filter labels.
const LINK_KINDS = { bridge: 'Bridges', veth: 'veth', vxlan: 'VXLAN', lo: 'Loopback', other: 'Other' };
const LARGE_GRAPH_NODES = 1500;
// On connect the server sends one snapshot per host: the first layout waits this long at most for
// the snapshots of every host named in the page, so it lays them out together.
const FIRST_SNAPSHOTS_WAIT_MS = 500;
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 30000;
const GOLDEN_ANGLE = 2.39996; // radians: successive spiral offsets never line up

// Stable element ids (the tests and the end-to-end suite rely on these); a host's id is its name.
const ids = {
  ns: (host, netns) => `${host}|ns|${netns}`,
  link: (host, netns, index) => `${host}|${netns}|${index}`,
  group: (bridgeId) => `${bridgeId}|endpoints`,
};

const $ = (selector) => document.querySelector(selector);
const root = $('#topology');
const knownHosts = JSON.parse($('#topology-hosts').textContent); // hosts the web app knows, by name

// ---------------------------------------------------------------------------------------------
// Model

function emptyState() {
  return Object.fromEntries(STATE_KINDS.map((kind) => [kind, {}]));
}

/** One host as the browser knows it: `state` is exactly what the server sent; the rest indexes it. */
class HostModel {
  constructor(name) {
    this.name = name;
    this.online = false;
    this.stale = false; // the server refused a frame of this host's agent and waits for a snapshot
    this.seq = null; // seq of the last snapshot or delta applied; null until the first snapshot
    this.lastSeen = null;
    this.agentVersion = null;
    this.state = emptyState();
    this.links = new Map(); // link node id -> link object
    this.linkIdByKey = new Map(); // state key -> link node id
    this.namespaces = new Map(); // netns name -> namespace object
    this.nsByKey = new Map(); // state key -> netns name
    this.nsLinks = new Map(); // netns name -> Set of link node ids
    this.byName = new Map(); // "netns|ifname" -> link node id
    this.ports = new Map(); // "netns|bridge name" -> Set of port node ids
    this.bridges = new Set(); // link node ids of bridges
    // Large-graph folding: endpoint namespace -> {group, bridge, veth, port}, and the reverse maps.
    this.folded = new Map();
    this.groups = new Map(); // group id -> Set of netns names
    this.hiddenPorts = new Map(); // port node id -> netns it is folded with
    this.linkAddresses = new Map(); // link node id -> Map of state key -> address object (for labels)
  }

  peerId(link) {
    return link && link.peer ? ids.link(this.name, link.peer.netns, link.peer.index) : null;
  }

  bridgeOf(link) {
    return link && link.master ? this.byName.get(`${link.netns}|${link.master}`) ?? null : null;
  }

  linkVisible(id) {
    const link = this.links.get(id);
    return Boolean(link) && !this.folded.has(link.netns) && !this.hiddenPorts.has(id);
  }

  /** The element standing for a node id on screen: itself, or the group it is folded into. */
  representative(id) {
    const link = this.links.get(id);
    if (link) {
      const netns = this.hiddenPorts.get(id) ?? link.netns;
      return this.folded.get(netns)?.group ?? id;
    }
    return id;
  }
}

function setAdd(map, key, value) {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(value);
}

function setDelete(map, key, value) {
  const set = map.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) map.delete(key);
}

const hosts = {}; // host name -> HostModel (exposed as window.switchboard.state)
const expanded = new Set(); // bridge node ids whose endpoint group the user opened
let largeGraph = false; // simplified drawing, switched on for good once a graph gets large
let grouping = false; // fold single-veth endpoints into one node per bridge
let groupingChosenByUser = false;

function hostModel(name) {
  if (!hosts[name]) {
    hosts[name] = new HostModel(name);
    touch(hosts[name], 'host', name);
  }
  return hosts[name];
}

// What the next flush has to reconcile.
const pending = {
  nodes: new Map(), // element id -> {h, type, key}
  refold: new Map(), // HostModel -> Set of netns names whose folding may have changed
  hints: new Map(), // node id -> position to place it at when it is added
  snapshot: false,
  delta: false,
  waiters: [],
  scheduled: false,
};

function touch(h, type, key) {
  const id = type === 'ns' ? ids.ns(h.name, key) : key;
  pending.nodes.set(id, { h, type, key });
}

function refold(h, netns) {
  if (!pending.refold.has(h)) pending.refold.set(h, new Set());
  pending.refold.get(h).add(netns);
}

/** Store or delete one object and mark what it affects; the state keeps the object untouched. */
function applyEvent(h, kind, action, key, object) {
  const bucket = h.state[kind];
  if (!bucket) return; // a kind this page does not know yet
  if (kind === 'addresses') addressChanged(h, key, bucket[key], action === 'set' ? object : null);
  if (action === 'del') {
    if (!(key in bucket)) return;
    delete bucket[key];
  } else if (action === 'set') {
    bucket[key] = object;
  } else {
    return;
  }
  const value = action === 'set' ? object : null;
  if (kind === 'links') linkChanged(h, key, value);
  else if (kind === 'namespaces') namespaceChanged(h, key, value);
  // Routes, neighbours and FDB entries draw nothing: search and the details panel read them from the
  // state at every flush. Addresses are drawn in their interface's label (addressChanged).
}

/** Keep the per-link address index in step and redraw the labels of the links concerned. */
function addressChanged(h, key, old, address) {
  for (const [a, add] of [[old, false], [address, true]]) {
    if (!a) continue;
    const id = ids.link(h.name, a.netns, a.ifindex);
    let held = h.linkAddresses.get(id);
    if (add) {
      if (!held) h.linkAddresses.set(id, (held = new Map()));
      held.set(key, a);
    } else if (held) {
      held.delete(key);
      if (held.size === 0) h.linkAddresses.delete(id);
    }
    if (h.links.has(id)) touch(h, 'link', id);
  }
}

function linkChanged(h, key, link) {
  const oldId = h.linkIdByKey.get(key);
  if (oldId !== undefined) {
    const old = h.links.get(oldId);
    h.linkIdByKey.delete(key);
    h.links.delete(oldId);
    setDelete(h.nsLinks, old.netns, oldId);
    if (h.byName.get(`${old.netns}|${old.name}`) === oldId) h.byName.delete(`${old.netns}|${old.name}`);
    if (old.master) setDelete(h.ports, `${old.netns}|${old.master}`, oldId);
    h.bridges.delete(oldId);
    affectedByLink(h, oldId, old);
  }
  if (link) {
    const id = ids.link(h.name, link.netns, link.index);
    h.linkIdByKey.set(key, id);
    h.links.set(id, link);
    setAdd(h.nsLinks, link.netns, id);
    h.byName.set(`${link.netns}|${link.name}`, id);
    if (link.master) setAdd(h.ports, `${link.netns}|${link.master}`, id);
    if (link.kind === 'bridge') h.bridges.add(id);
    affectedByLink(h, id, link);
  }
}

/** Mark every element whose look or existence depends on this link. */
function affectedByLink(h, id, link) {
  touch(h, 'link', id);
  touch(h, 'ns', link.netns); // a namespace node also exists implicitly while it holds links
  refold(h, link.netns);
  const peer = h.peerId(link);
  if (peer) {
    touch(h, 'link', peer);
    refold(h, link.peer.netns);
  }
  if (link.kind === 'bridge') {
    // Its ports draw their edge to it, and the endpoints behind them may fold into its group.
    for (const port of h.ports.get(`${link.netns}|${link.name}`) ?? []) {
      touch(h, 'link', port);
      const portPeer = h.links.get(port)?.peer;
      if (portPeer) refold(h, portPeer.netns);
    }
  }
}

function namespaceChanged(h, key, namespace) {
  const oldName = h.nsByKey.get(key);
  if (oldName !== undefined) {
    h.nsByKey.delete(key);
    h.namespaces.delete(oldName);
    touch(h, 'ns', oldName);
    refold(h, oldName);
  }
  if (namespace) {
    h.nsByKey.set(key, namespace.name);
    h.namespaces.set(namespace.name, namespace);
    touch(h, 'ns', namespace.name);
    refold(h, namespace.name);
  }
}

/** The group an endpoint namespace folds into: it holds one veth (and lo) whose peer is a bridge port. */
function foldTarget(h, netns) {
  const namespace = h.namespaces.get(netns);
  if (!grouping || !namespace || namespace.kind === 'host') return null;
  let veth = null;
  for (const id of h.nsLinks.get(netns) ?? []) {
    const link = h.links.get(id);
    if (linkKind(link) === 'lo') continue;
    if (veth || link.kind !== 'veth') return null;
    veth = id;
  }
  const port = h.peerId(h.links.get(veth));
  const portLink = port && h.links.get(port);
  if (!portLink || portLink.netns === netns) return null;
  const bridge = h.bridgeOf(portLink);
  if (!bridge || expanded.has(bridge)) return null;
  return { group: ids.group(bridge), bridge, veth, port };
}

function applyFold(h, netns) {
  const want = foldTarget(h, netns);
  const had = h.folded.get(netns) ?? null;
  if (had?.group === want?.group && had?.port === want?.port && had?.veth === want?.veth) return;
  if (had) {
    setDelete(h.groups, had.group, netns);
    h.hiddenPorts.delete(had.port);
    touch(h, 'group', had.group);
    touch(h, 'link', had.port);
    h.folded.delete(netns);
  }
  if (want) {
    h.folded.set(netns, want);
    setAdd(h.groups, want.group, netns);
    h.hiddenPorts.set(want.port, netns);
    touch(h, 'group', want.group);
    touch(h, 'link', want.port);
  }
  touch(h, 'ns', netns);
  for (const id of h.nsLinks.get(netns) ?? []) touch(h, 'link', id);
}

function refoldAll() {
  for (const h of Object.values(hosts)) {
    for (const netns of h.nsLinks.keys()) refold(h, netns);
  }
}

function nodeCount() {
  let n = 0;
  for (const h of Object.values(hosts)) n += 1 + h.nsLinks.size + h.links.size;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Frames

function applySnapshot(frame) {
  const h = hostModel(frame.host);
  h.online = Boolean(frame.online);
  h.stale = Boolean(frame.stale);
  h.lastSeen = frame.last_seen ?? h.lastSeen;
  h.seq = frame.seq;
  const incoming = frame.state ?? {};
  // Diff against what we hold so an agent reconnecting (or a resync) only changes what changed.
  for (const kind of STATE_KINDS) {
    const held = h.state[kind];
    const next = incoming[kind] ?? {};
    for (const key of Object.keys(held)) {
      if (!(key in next)) applyEvent(h, kind, 'del', key);
    }
    for (const [key, object] of Object.entries(next)) {
      if (!(key in held) || JSON.stringify(held[key]) !== JSON.stringify(object)) {
        applyEvent(h, kind, 'set', key, object);
      }
    }
  }
  touch(h, 'host', h.name);
  resyncRequested = false;
  pending.snapshot = true;
  firstSnapshotAt ??= performance.now();
  if (!largeGraph && nodeCount() > LARGE_GRAPH_NODES) enterLargeGraphMode();
}

let firstSnapshotAt = null;
let resyncRequested = false;
let connection = null; // the Connection, once the page has opened it

function applyDelta(frame) {
  const h = hosts[frame.host];
  // Before this host's first snapshot, or already contained in the snapshot we hold: skip.
  if (!h || h.seq === null || frame.seq <= h.seq) return;
  if (frame.seq !== h.seq + 1 && !resyncRequested) {
    // A gap: apply what we got (closer to the truth) and ask for every host's snapshot again.
    resyncRequested = true;
    connection?.send({ type: 'resync' });
  }
  h.seq = frame.seq;
  for (const event of frame.events ?? []) {
    applyEvent(h, event.kind, event.action, event.key, event.object);
  }
  pending.delta = true;
}

function applyHostStatus(frame) {
  const h = hostModel(frame.host);
  h.online = Boolean(frame.online);
  h.stale = Boolean(frame.stale);
  h.lastSeen = frame.last_seen ?? h.lastSeen;
  h.agentVersion = frame.agent_version ?? h.agentVersion;
  touch(h, 'host', h.name);
}

/** Apply one frame to the model; the graph follows at the next flush (the returned promise). */
function handleFrame(frame) {
  switch (frame?.type) {
    case 'topology.snapshot':
      applySnapshot(frame);
      break;
    case 'topology.delta':
      applyDelta(frame);
      break;
    case 'host.status':
      applyHostStatus(frame);
      break;
    default:
      console.debug('switchboard: ignoring frame', frame);
  }
  return scheduleFlush();
}

function scheduleFlush() {
  const done = new Promise((resolve) => pending.waiters.push(resolve));
  if (!pending.scheduled) {
    pending.scheduled = true;
    // One flush per frame however many socket frames arrived; a hidden tab only queues ids.
    requestAnimationFrame(flush);
  }
  return done;
}

// ---------------------------------------------------------------------------------------------
// Graph

// Colours and line styles of the graph, shared by the stylesheet and the legend (one source).
const LOOK = {
  host: { fill: '#f8fafc', border: '#334155' },
  hostOffline: { fill: '#f1f5f9', border: '#94a3b8', text: '#64748b' },
  nsNamed: { fill: '#e0e7ff', border: '#818cf8' },
  nsHost: { fill: '#e2e8f0', border: '#64748b' },
  nsDocker: { fill: '#e0f2fe', border: '#0284c7' },
  nsProcess: { fill: '#f3e8ff', border: '#9333ea' },
  bridge: '#2563eb',
  veth: '#059669',
  vxlan: '#d97706',
  lo: '#cbd5e1',
  other: '#475569',
  group: { fill: '#d1fae5', border: '#059669', text: '#065f46' },
  down: { fill: '#f1f5f9', line: '#e11d48', text: '#9ca3af' }, // down interfaces and links
  match: '#f59e0b',
  selected: '#dc2626',
  vethEdge: '#10b981',
  portEdge: '#60a5fa',
  groupEdge: '#6ee7b7',
};
const DOWN_DASH = [6, 4];

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

const cy = cytoscape({
  container: $('#cy'),
  style: stylesheet(false, true),
  selectionType: 'single',
  boxSelectionEnabled: false,
  minZoom: 0.05,
  maxZoom: 4,
});

// Level of detail: below this zoom an interface's label is its name only; its address lines (and a
// VXLAN's VNI and remote) would be under ~8 px on screen and overlap their neighbours.
const DETAIL_ZOOM = 0.75;
let detailedLabels = true; // the stylesheet in use draws full labels

function updateLabelDetail() {
  const want = cy.zoom() >= DETAIL_ZOOM;
  if (want === detailedLabels) return;
  detailedLabels = want;
  cy.style(stylesheet(largeGraph, want)); // once per crossing of the threshold, not per zoom step
}

function stylesheet(large, detailed) {
  const font = 'system-ui, -apple-system, "Segoe UI", sans-serif';
  return [
    {
      selector: 'node',
      style: {
        label: 'data(label)',
        'font-family': font,
        'font-size': 11,
        color: '#1e293b',
        'text-valign': 'bottom',
        'text-margin-y': 3,
        'text-wrap': 'wrap',
        'text-max-width': 140,
        width: 22,
        height: 22,
        'background-color': '#64748b',
        'border-width': 1,
        'border-color': '#ffffff',
        // Large graphs: no labels once they would be smaller than 9 px on screen.
        'min-zoomed-font-size': large ? 9 : 0,
      },
    },
    // Zoomed out: names only (see DETAIL_ZOOM).
    ...(detailed ? [] : [{ selector: 'node[brief]', style: { label: 'data(brief)' } }]),
    {
      selector: ':parent',
      style: {
        shape: 'round-rectangle',
        'text-valign': 'top',
        'text-margin-y': -3,
        padding: 14,
        'background-opacity': 0.35,
      },
    },
    {
      selector: 'node.host',
      style: {
        shape: 'round-rectangle',
        'background-color': LOOK.host.fill,
        'background-opacity': 1,
        'border-width': 2,
        'border-color': LOOK.host.border,
        'font-size': 15,
        'font-weight': 'bold',
        padding: 24,
      },
    },
    {
      // A host without namespaces (an agent that never reported): a compact labelled box.
      selector: 'node.host:childless',
      style: { width: 160, height: 44, 'text-valign': 'center', 'font-size': 13, 'border-width': 2 },
    },
    {
      // Offline: dashed and faded, contents included (a compound's opacity applies to its children).
      selector: 'node.host.offline',
      style: {
        'border-style': 'dashed',
        'border-color': LOOK.hostOffline.border,
        'background-color': LOOK.hostOffline.fill,
        color: LOOK.hostOffline.text,
        opacity: 0.6,
      },
    },
    {
      selector: 'node.namespace',
      style: { 'background-color': LOOK.nsNamed.fill, 'border-color': LOOK.nsNamed.border, 'border-width': 1 },
    },
    { selector: 'node.ns-host', style: { 'background-color': LOOK.nsHost.fill, 'border-color': LOOK.nsHost.border } },
    {
      selector: 'node.ns-docker',
      style: { 'background-color': LOOK.nsDocker.fill, 'border-color': LOOK.nsDocker.border, 'border-width': 2 },
    },
    {
      selector: 'node.ns-process',
      style: { 'background-color': LOOK.nsProcess.fill, 'border-color': LOOK.nsProcess.border, 'border-style': 'dashed' },
    },
    {
      selector: 'node.k-bridge',
      style: { shape: 'round-rectangle', width: 48, height: 24, 'background-color': LOOK.bridge },
    },
    { selector: 'node.k-veth', style: { 'background-color': LOOK.veth } },
    {
      selector: 'node.k-vxlan',
      // Not 'diamond': Cytoscape 3.34 misses clicks on a diamond's vertical centre line.
      style: { shape: 'round-diamond', width: 32, height: 32, 'background-color': LOOK.vxlan, 'font-weight': 'bold' },
    },
    {
      selector: 'node.k-lo',
      style: { width: 12, height: 12, 'background-color': LOOK.lo, color: '#64748b', 'font-size': 9 },
    },
    { selector: 'node.k-other', style: { shape: 'hexagon', 'background-color': LOOK.other } },
    {
      selector: 'node.group',
      style: {
        shape: 'round-rectangle',
        width: 90,
        height: 34,
        'background-color': LOOK.group.fill,
        'border-color': LOOK.group.border,
        'border-width': 2,
        'border-style': 'double',
        'text-valign': 'center',
        'font-weight': 'bold',
        color: LOOK.group.text,
      },
    },
    {
      selector: 'node.down',
      style: {
        'background-color': LOOK.down.fill,
        'border-color': LOOK.down.line,
        'border-style': 'dashed',
        'border-width': 2,
        color: LOOK.down.text,
      },
    },
    {
      selector: 'edge',
      style: {
        width: 2,
        'line-color': '#94a3b8',
        // Haystack edges are drawn far faster and need no routing.
        'curve-style': large ? 'haystack' : 'bezier',
      },
    },
    { selector: 'edge.veth', style: { width: 3, 'line-color': LOOK.vethEdge } },
    {
      selector: 'edge.port',
      style: large
        ? { 'line-color': LOOK.portEdge }
        : {
            'line-color': LOOK.portEdge,
            'target-arrow-shape': 'triangle',
            'target-arrow-color': LOOK.portEdge,
            'arrow-scale': 0.8,
          },
    },
    { selector: 'edge.group-edge', style: { width: 5, 'line-color': LOOK.groupEdge, 'line-style': 'dashed' } },
    {
      // A veth pair or bridge port with an end that is down: another colour and dashed.
      selector: 'edge.down',
      style: {
        'line-color': LOOK.down.line,
        'target-arrow-color': LOOK.down.line,
        'line-style': 'dashed',
        'line-dash-pattern': DOWN_DASH,
      },
    },
    { selector: '.dimmed', style: { opacity: 0.15 } },
    {
      selector: 'node.match',
      style: { 'border-width': 4, 'border-color': LOOK.match, 'border-style': 'solid', 'z-index': 10 },
    },
    {
      selector: 'node:selected',
      style: { 'border-width': 4, 'border-color': LOOK.selected, 'border-style': 'solid' },
    },
    { selector: '.filtered', style: { display: 'none' } },
  ];
}

// The legend: every node look and edge style the stylesheet above uses, drawn from the same LOOK.
const LEGEND = [
  ['Boxes', [
    ['Host', { shape: 'box', fill: LOOK.host.fill, border: LOOK.host.border, width: 2 }],
    ['Host offline', { shape: 'box', fill: LOOK.hostOffline.fill, border: LOOK.hostOffline.border, width: 2, dash: true }],
    ['Namespace', { shape: 'box', fill: LOOK.nsNamed.fill, border: LOOK.nsNamed.border }],
    ['Host namespace', { shape: 'box', fill: LOOK.nsHost.fill, border: LOOK.nsHost.border }],
    ['Docker namespace', { shape: 'box', fill: LOOK.nsDocker.fill, border: LOOK.nsDocker.border, width: 2 }],
    ['Process namespace', { shape: 'box', fill: LOOK.nsProcess.fill, border: LOOK.nsProcess.border, dash: true }],
  ]],
  ['Interfaces', [
    ['Bridge', { shape: 'bar', fill: LOOK.bridge }],
    ['veth', { shape: 'circle', fill: LOOK.veth }],
    ['VXLAN', { shape: 'diamond', fill: LOOK.vxlan }],
    ['Loopback', { shape: 'dot', fill: LOOK.lo }],
    ['Other', { shape: 'hexagon', fill: LOOK.other }],
    ['Grouped endpoints', { shape: 'bar', fill: LOOK.group.fill, border: LOOK.group.border, width: 2 }],
    ['Down', { shape: 'circle', fill: LOOK.down.fill, border: LOOK.down.line, width: 2, dash: true }],
    ['Search match', { shape: 'circle', fill: '#ffffff', border: LOOK.match, width: 3 }],
    ['Selected', { shape: 'circle', fill: '#ffffff', border: LOOK.selected, width: 3 }],
  ]],
  ['Lines', [
    ['veth pair', { shape: 'line', border: LOOK.vethEdge, width: 3 }],
    ['Bridge port', { shape: 'arrow', border: LOOK.portEdge, width: 2 }],
    ['Grouped endpoints', { shape: 'line', border: LOOK.groupEdge, width: 5, dash: true }],
    ['Link down', { shape: 'line', border: LOOK.down.line, width: 2, dash: true }],
  ]],
];

function svgEl(tag, attrs) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  return node;
}

/** A 28×16 swatch drawing one legend entry. */
function legendSwatch({ shape, fill = 'none', border = 'none', width = 1, dash = false }) {
  const paint = { fill, stroke: border, 'stroke-width': width, ...(dash ? { 'stroke-dasharray': DOWN_DASH.join(' ') } : {}) };
  const svg = svgEl('svg', { width: 28, height: 16, viewBox: '0 0 28 16', 'aria-hidden': 'true', class: 'legend-swatch' });
  const shapes = {
    box: () => svgEl('rect', { x: 2, y: 2, width: 24, height: 12, rx: 3, ...paint }),
    bar: () => svgEl('rect', { x: 4, y: 4, width: 20, height: 9, rx: 2, ...paint }),
    circle: () => svgEl('circle', { cx: 14, cy: 8, r: 6, ...paint }),
    dot: () => svgEl('circle', { cx: 14, cy: 8, r: 3.5, ...paint }),
    diamond: () => svgEl('polygon', { points: '14,1 21,8 14,15 7,8', ...paint }),
    hexagon: () => svgEl('polygon', { points: '8,8 11,2.5 17,2.5 20,8 17,13.5 11,13.5', ...paint }),
    line: () => svgEl('line', { x1: 1, y1: 8, x2: 27, y2: 8, ...paint, fill: 'none' }),
    arrow: () => [
      svgEl('line', { x1: 1, y1: 8, x2: 21, y2: 8, ...paint, fill: 'none' }),
      svgEl('polygon', { points: '20,4 27,8 20,12', fill: border }),
    ],
  };
  svg.append(...[shapes[shape]()].flat());
  return svg;
}

function renderLegend() {
  const legend = $('#legend');
  $('#legend-body').replaceChildren(
    ...LEGEND.map(([title, entries]) =>
      el(
        'div',
        { class: 'legend-group' },
        el('h3', {}, title),
        el('ul', { class: 'plain' }, entries.map(([label, look]) => el('li', { 'data-legend': label }, legendSwatch(look), ` ${label}`))),
      ),
    ),
  );
  // Closed until the reader opens it (it covers a corner of the graph); their choice is kept.
  legend.open = storedFlag(LEGEND_OPEN_KEY);
  legend.addEventListener('toggle', () => storeFlag(LEGEND_OPEN_KEY, legend.open));
}

const LEGEND_OPEN_KEY = 'switchboard.topology.legendOpen';

function storedFlag(key) {
  try {
    return window.localStorage.getItem(key) === 'true';
  } catch {
    return false; // storage refused (privacy settings): the default
  }
}

function storeFlag(key, on) {
  try {
    window.localStorage.setItem(key, String(on));
  } catch {
    // not kept: the page still works
  }
}

function enterLargeGraphMode() {
  largeGraph = true;
  cy.style(stylesheet(true, detailedLabels));
  // Cytoscape reads these two only at start-up; the renderer holds the live values (3.34).
  const renderer = cy.renderer();
  renderer.textureOnViewport = true;
  renderer.hideEdgesOnViewport = true;
  if (!groupingChosenByUser) setGrouping(true);
}

function setGrouping(on) {
  if (grouping === on) return;
  grouping = on;
  $('#group-endpoints').checked = on;
  if (!on) expanded.clear();
  refoldAll();
}

function hostStatus(h) {
  if (!h?.online) return 'offline';
  return h.stale ? 'resyncing' : 'online';
}

function hostLabel(h) {
  const status = hostStatus(h);
  if (status === 'online') return h.name;
  return status === 'offline' && h.lastSeen ? `${h.name} (offline since ${formatTime(h.lastSeen)})` : `${h.name} (${status})`;
}

/** An ISO 8601 time as the reader's local date and time, to the minute. */
function formatTime(iso) {
  const time = new Date(iso);
  return Number.isNaN(time.getTime()) ? iso : time.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

function nsLabel(netns, namespace) {
  const kind = namespace?.kind;
  return kind === 'docker' || kind === 'process' ? `${netns} [${kind}]` : netns;
}

function linkLabel(h, id, link) {
  return linkLabels(link, [...(h.linkAddresses.get(id)?.values() ?? [])]);
}

/** What the graph should hold for one id: a Cytoscape element definition, or null for nothing. */
function nodeSpec({ h, type, key }) {
  const host = h.name;
  if (type === 'host') {
    return { data: { id: host, type, host, label: hostLabel(h) }, classes: h.online ? 'host' : 'host offline' };
  }
  if (type === 'ns') {
    const namespace = h.namespaces.get(key);
    if ((!namespace && !h.nsLinks.has(key)) || h.folded.has(key)) return null;
    return {
      data: { id: ids.ns(host, key), parent: host, type: 'namespace', host, netns: key, label: nsLabel(key, namespace) },
      classes: `namespace ns-${namespace?.kind ?? 'unknown'}`,
    };
  }
  if (type === 'link') {
    if (!h.linkVisible(key)) return null;
    const link = h.links.get(key);
    const kind = linkKind(link);
    const { full, brief } = linkLabel(h, key, link);
    return {
      data: {
        id: key,
        parent: ids.ns(host, link.netns),
        type,
        host,
        netns: link.netns,
        kind,
        label: full,
        brief,
      },
      classes: `link k-${kind}${linkDown(link) ? ' down' : ''}`,
    };
  }
  // type === 'group'
  const members = h.groups.get(key);
  if (!members) return null;
  const bridge = key.slice(0, -'|endpoints'.length);
  const count = members.size;
  return {
    data: { id: key, parent: host, type, host, bridge, count, label: `${count} endpoint${count === 1 ? '' : 's'}` },
    classes: 'group',
  };
}

/** Edges a node owns: its port edge to its bridge and its veth edge (links), its bridge edge (groups). */
function ownedEdges(h, id, type) {
  const host = h.name;
  const present = (nodeId) => cy.getElementById(nodeId).nonempty();
  const edges = [];
  if (type === 'group') {
    const bridge = id.slice(0, -'|endpoints'.length);
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
  if (peer && present(peer)) edges.push(vethEdge(host, id, peer, linkDown(link) || linkDown(h.links.get(peer))));
  return edges;
}

function vethEdge(host, a, b, down) {
  const [source, target] = a < b ? [a, b] : [b, a];
  return { data: { id: `veth:${source}~${target}`, source, target, kind: 'veth', host }, classes: down ? 'veth down' : 'veth' };
}

/**
 * Apply a changed spec to a node already drawn. Only real changes are written: Cytoscape restyles
 * a node and all its descendants on any data write, which is costly for a host or namespace box.
 */
function updateNode(node, spec) {
  const { parent, ...data } = spec.data; // a node's parent never changes: it is part of its id
  const current = node.data();
  const changed = Object.fromEntries(Object.entries(data).filter(([key, value]) => current[key] !== value));
  if (Object.keys(changed).length) node.data(changed);
  const classes = spec.classes.split(' ');
  const wanted = new Set(classes);
  const stale = node.classes().filter((c) => !wanted.has(c) && !VIEW_CLASSES.has(c));
  const missing = classes.filter((c) => !node.hasClass(c));
  if (stale.length) node.removeClass(stale.join(' '));
  if (missing.length) node.addClass(missing.join(' '));
}

// Classes set by filters and search (applyFilters), not by the model.
const VIEW_CLASSES = new Set(['filtered', 'match', 'dimmed']);

/** Bring the graph in line with the model for every dirty id; returns the nodes it added. */
function reconcile(dirty) {
  const byLevel = [[], [], []]; // hosts, then namespaces, then links and groups: parents first
  const level = { host: 0, ns: 1, link: 2, group: 2 };
  const removals = [];
  for (const [id, entry] of dirty) {
    const spec = nodeSpec(entry);
    const node = cy.getElementById(id);
    if (!spec) {
      if (node.nonempty()) removals.push(node);
    } else if (node.empty()) {
      byLevel[level[entry.type]].push(spec);
    } else {
      updateNode(node, spec);
    }
  }
  for (const node of removals) {
    if (!node.removed()) node.remove(); // removing a namespace already removed its folded links
  }
  let added = cy.collection();
  for (const specs of byLevel) {
    // Start where the parent is, until placeNodes finds a better spot next to a neighbour.
    const positioned = specs.map((spec) => {
      const parent = spec.data.parent ? cy.getElementById(spec.data.parent) : null;
      return { group: 'nodes', ...spec, position: parent?.nonempty() ? { ...parent.position() } : { x: 0, y: 0 } };
    });
    added = added.union(cy.add(positioned));
  }
  // Edges: every dirty link or group re-derives the edges it owns (a veth edge is owned by both ends).
  const newEdges = new Map();
  for (const [id, { h, type }] of dirty) {
    if (type !== 'link' && type !== 'group') continue;
    const node = cy.getElementById(id);
    if (node.empty()) continue;
    const want = new Map(ownedEdges(h, id, type).map((edge) => [edge.data.id, edge]));
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
      else setClass(drawnEdge, 'down', edge.classes.split(' ').includes('down')); // an end went up or down
    }
  }
  cy.add([...newEdges.values()]);
  return added.filter((node) => !node.removed());
}

// ---------------------------------------------------------------------------------------------
// Placement

let drawn = false; // the first full layout has run
let lastFlushDone = Promise.resolve(); // settles when the latest flush (and its layouts) finished
let resolveReady;
const ready = new Promise((resolve) => (resolveReady = resolve));

function layoutOptions(eles, { animate, fit }) {
  const n = eles.nodes().length;
  return {
    name: 'fcose',
    eles,
    // The spectral draft alone is fast enough for thousands of nodes; polish smaller graphs.
    quality: n > LARGE_GRAPH_NODES ? 'draft' : 'default',
    randomize: true,
    animate,
    animationDuration: 400,
    fit,
    padding: 40,
    nodeDimensionsIncludeLabels: true,
    packComponents: true,
    nodeRepulsion: () => 6500,
    idealEdgeLength: () => 60,
    nestingFactor: 0.15,
  };
}

function runLayout(eles, options) {
  return new Promise((resolve) => {
    const layout = eles.layout(layoutOptions(eles, options));
    layout.one('layoutstop', resolve);
    layout.run();
  });
}

function spiral(center, k, base) {
  const r = base + 22 * Math.sqrt(k);
  return { x: center.x + r * Math.cos(k * GOLDEN_ANGLE), y: center.y + r * Math.sin(k * GOLDEN_ANGLE) };
}

/**
 * Put new nodes next to something already placed: a position hint (an opened group), an edge
 * neighbour (veth peer, bridge), a sibling in the same namespace, else where their parent was.
 * Nodes already on screen never move. Linear in the nodes placed: boxes and per-parent anchors are
 * looked up once per call (slightly stale boxes only make the spacing approximate).
 */
function placeNodes(nodes) {
  const unplaced = new Set(nodes.map((node) => node.id()));
  const used = new Map(); // anchor id -> offsets handed out so far
  const boxes = new Map(); // container id -> bounding box
  const siblingAnchor = new Map(); // parent id -> a placed child, or null
  const isPlaced = (node) =>
    !unplaced.has(node.id()) && !(node.isParent() && node.descendants().some((d) => unplaced.has(d.id())));
  const place = (node, position) => {
    node.position(position);
    unplaced.delete(node.id());
  };
  const nextOffset = (anchor) => {
    const k = used.get(anchor.id()) ?? anchor.degree(false);
    used.set(anchor.id(), k + 1);
    return k;
  };
  const boxOf = (container) => {
    if (!boxes.has(container.id())) boxes.set(container.id(), container.boundingBox({ includeLabels: false }));
    return boxes.get(container.id());
  };
  const placedSibling = (node) => {
    const parent = node.parent();
    const key = parent.nonempty() ? parent.id() : '';
    if (!siblingAnchor.get(key)) {
      const children = parent.nonempty() ? parent.children() : cy.nodes().orphans();
      siblingAnchor.set(key, children.filter((child) => child !== node && isPlaced(child))[0] ?? null);
    }
    return siblingAnchor.get(key);
  };

  for (const node of nodes) {
    const hint = pending.hints.get(node.id());
    if (hint) place(node, hint);
  }
  // Rounds: a node whose anchor is itself new waits until that anchor has been placed.
  let progress = true;
  while (unplaced.size && progress) {
    progress = false;
    for (const id of [...unplaced]) {
      const node = cy.getElementById(id);
      const anchor = node.neighborhood('node').filter(isPlaced)[0] ?? placedSibling(node);
      if (!anchor) continue;
      place(node, nearAnchor(node, anchor, nextOffset(anchor), boxOf));
      progress = true;
    }
  }
  // Nothing placed nearby: keep the start position (the parent's), spread out a little.
  for (const id of unplaced) {
    const node = cy.getElementById(id);
    const start = node.position();
    const centre = start.x === 0 && start.y === 0 && cy.nodes().length > 1 ? extentCentre() : start;
    place(node, spiral(centre, nextOffset(node.parent().nonempty() ? node.parent() : node), 30));
  }
}

function extentCentre() {
  const box = cy.extent();
  return { x: (box.x1 + box.x2) / 2, y: (box.y1 + box.y2) / 2 };
}

function nearAnchor(node, anchor, k, boxOf) {
  if (!anchor.isParent() && node.parent().same(anchor.parent())) return spiral(anchor.position(), k, 45);
  // In another box (a new namespace next to a bridge port): step out of the box holding the anchor
  // along the ray from its centre through the anchor, so namespaces do not land inside each other.
  const container = anchor.isParent() || anchor.parent().empty() ? anchor : anchor.parent();
  const box = boxOf(container);
  const centre = { x: (box.x1 + box.x2) / 2, y: (box.y1 + box.y2) / 2 };
  const from = anchor.position();
  let dx = from.x - centre.x;
  let dy = from.y - centre.y;
  const length = Math.hypot(dx, dy);
  [dx, dy] = length < 1 ? [1, 0] : [dx / length, dy / length];
  const out = Math.max(box.w, box.h) / 2 + 70;
  return spiral({ x: centre.x + dx * out, y: centre.y + dy * out }, k, 0);
}

/** A host that appears after the first draw gets a layout of its own, right of everything else. */
function layoutNewHost(hostNode) {
  const others = cy.elements().difference(hostNode.union(hostNode.descendants()));
  const eles = hostNode.union(hostNode.descendants()).union(hostNode.descendants().connectedEdges());
  return runLayout(eles, { animate: false, fit: false }).then(() => {
    const box = eles.boundingBox();
    const taken = others.nonempty() ? others.boundingBox() : { x2: box.x1 - 120, y1: box.y1 };
    hostNode.descendants().filter((n) => n.isChildless()).shift({ x: taken.x2 + 120 - box.x1, y: taken.y1 - box.y1 });
  });
}

// ---------------------------------------------------------------------------------------------
// Flush: model -> graph, once per animation frame

function flush() {
  if (!drawn && pending.snapshot && !firstSnapshotsIn()) {
    setTimeout(() => requestAnimationFrame(flush), 50); // still scheduled: frames keep queueing
    return;
  }
  pending.scheduled = false;
  for (const [h, namespaces] of pending.refold) {
    for (const netns of namespaces) applyFold(h, netns);
  }
  pending.refold.clear();
  const dirty = new Map(pending.nodes);
  pending.nodes.clear();
  const firstDraw = !drawn && pending.snapshot;
  let added = cy.collection();
  cy.batch(() => {
    added = reconcile(dirty);
  });
  const layouts = [];
  if (firstDraw) {
    drawn = true;
    layouts.push(runLayout(cy.elements(), { animate: false, fit: true }));
  } else if (added.nonempty()) {
    const newHosts = added.filter((node) => node.data('type') === 'host' && node.isParent());
    const leaves = added.filter((node) => node.isChildless()).difference(newHosts.descendants());
    cy.batch(() => placeNodes(leaves.toArray()));
    layouts.push(...newHosts.map(layoutNewHost));
  }
  pending.hints.clear();
  refreshView(added);
  const waiters = pending.waiters.splice(0);
  const wasDelta = pending.delta;
  pending.snapshot = pending.delta = false;
  lastFlushDone = Promise.all(layouts).then(() => {
    if (firstDraw) resolveReady();
    if (wasDelta) switchboard.lastDeltaAppliedAt = Date.now();
    for (const resolve of waiters) resolve();
  });
}

function firstSnapshotsIn() {
  const waited = performance.now() - firstSnapshotAt > FIRST_SNAPSHOTS_WAIT_MS;
  return waited || knownHosts.every((name) => hosts[name] && hosts[name].seq !== null);
}

/** Everything besides the graph elements: filters, search, sidebar, panel, summary, empty state. */
function refreshView(added) {
  renderHostFilters();
  renderNetworkOptions();
  if (filtersActive()) applyFilters(cy.elements());
  else applyFilters(added.union(added.connectedEdges()));
  renderDetails();
  renderSummary();
  renderEmptyState();
  renderConnectedStatus();
  tableView.refresh();
}

// ---------------------------------------------------------------------------------------------
// Filters and search

const filters = {
  hiddenHosts: new Set(),
  hiddenKinds: new Set(),
  network: '', // bridge name, or '' for all
  query: '',
};

function filtersActive() {
  return Boolean(filters.hiddenHosts.size || filters.hiddenKinds.size || filters.network || filters.query.trim());
}

/** Node ids in the L2 domain of every bridge called `name`: bridges, ports, peers, chained bridges. */
function networkDomain(name) {
  const keep = new Set();
  for (const h of Object.values(hosts)) {
    const queue = [...h.bridges].filter((id) => h.links.get(id).name === name);
    const seen = new Set(queue);
    while (queue.length) {
      const bridgeId = queue.pop();
      const bridge = h.links.get(bridgeId);
      keep.add(bridgeId).add(ids.group(bridgeId));
      for (const port of h.ports.get(`${bridge.netns}|${bridge.name}`) ?? []) {
        keep.add(port);
        const peer = h.peerId(h.links.get(port));
        const peerLink = peer && h.links.get(peer);
        if (!peerLink) continue;
        keep.add(peer);
        const next = h.bridgeOf(peerLink); // a veth between two bridges joins their domains
        if (next && !seen.has(next)) {
          seen.add(next);
          queue.push(next);
        }
      }
    }
  }
  return keep;
}

function ipMatches(address, query) {
  const cidr = `${address.address}/${address.prefixlen}`;
  if (query.includes('/')) return cidr === query;
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(query)) return address.address === query; // a whole IPv4 address
  return cidr.includes(query);
}

/**
 * Ids on screen that match the search (name, IP address or MAC, or a node or network name in an
 * interface's owner alias); a folded match lights its group.
 */
function searchMatches(rawQuery) {
  const query = rawQuery.trim().toLowerCase();
  if (!query) return null;
  const hits = new Set();
  for (const h of Object.values(hosts)) {
    if (h.name.toLowerCase().includes(query)) hits.add(h.name);
    for (const netns of h.nsLinks.keys()) {
      if (netns.toLowerCase().includes(query)) hits.add(h.folded.get(netns)?.group ?? ids.ns(h.name, netns));
    }
    for (const [id, link] of h.links) {
      if (
        link.name.toLowerCase().includes(query) ||
        link.mac?.includes(query) ||
        aliasNames(link.alias).some((name) => name.includes(query))
      ) {
        hits.add(h.representative(id));
      }
    }
    for (const address of Object.values(h.state.addresses)) {
      if (!ipMatches(address, query)) continue;
      const id = ids.link(h.name, address.netns, address.ifindex);
      if (h.links.has(id)) hits.add(h.representative(id));
    }
  }
  return hits;
}

function applyFilters(eles) {
  const domain = filters.network ? networkDomain(filters.network) : null;
  const shownParents = new Set(); // namespaces and hosts holding something in the domain
  if (domain) {
    for (const id of domain) {
      const node = cy.getElementById(id);
      if (node.nonempty()) node.ancestors().forEach((a) => shownParents.add(a.id()));
    }
  }
  const hits = searchMatches(filters.query);
  const litParents = new Set();
  if (hits) {
    for (const id of hits) cy.getElementById(id).ancestors().forEach((a) => litParents.add(a.id()));
  }
  const nodeHidden = (node) => {
    const { type, host, kind } = node.data();
    if (filters.hiddenHosts.has(host)) return true;
    if (type === 'link' && filters.hiddenKinds.has(kind)) return true;
    if (type === 'group' && filters.hiddenKinds.has('veth')) return true;
    if (!domain) return false;
    if (type === 'link' || type === 'group') return !domain.has(node.id());
    return !shownParents.has(node.id());
  };
  cy.batch(() => {
    eles.forEach((ele) => {
      if (ele.isNode()) {
        setClass(ele, 'filtered', nodeHidden(ele));
        setClass(ele, 'match', Boolean(hits?.has(ele.id())));
        setClass(ele, 'dimmed', Boolean(hits) && !hits.has(ele.id()) && !litParents.has(ele.id()));
      } else {
        setClass(ele, 'dimmed', Boolean(hits) && !(hits.has(ele.source().id()) && hits.has(ele.target().id())));
      }
    });
  });
  const count = $('#search-count');
  count.textContent = hits ? `${hits.size} match${hits.size === 1 ? '' : 'es'}` : '';
  return hits;
}

/** toggleClass restyles the element (and its whole subtree) even when nothing changes: skip that. */
function setClass(ele, cls, on) {
  if (ele.hasClass(cls) !== on) ele.toggleClass(cls, on);
}

function setQuery(query) {
  filters.query = query;
  applyFilters(cy.elements());
  tableView.refresh();
}

// ---------------------------------------------------------------------------------------------
// Sidebar, summary, empty state

function renderKindFilters() {
  $('#kind-filters').replaceChildren(
    ...Object.entries(LINK_KINDS).map(([kind, label]) =>
      el(
        'li',
        {},
        el('label', {}, el('input', { type: 'checkbox', name: 'kind', value: kind, checked: true }), ' ', el('span', { class: `swatch k-${kind}` }), ` ${label}`),
      ),
    ),
  );
}

function renderHostFilters() {
  const list = $('#host-filters');
  const names = [...new Set([...knownHosts, ...Object.keys(hosts)])].sort();
  const rendered = [...list.querySelectorAll('input')].map((input) => input.value);
  if (rendered.join('\n') !== names.join('\n')) {
    list.replaceChildren(
      ...names.map((name) =>
        el(
          'li',
          {},
          el(
            'label',
            {},
            el('input', { type: 'checkbox', value: name, checked: !filters.hiddenHosts.has(name) }),
            ` ${name} `,
            el('span', { class: 'badge', 'data-host-status': name }),
          ),
        ),
      ),
    );
  }
  for (const badge of list.querySelectorAll('[data-host-status]')) {
    const h = hosts[badge.dataset.hostStatus];
    const online = Boolean(h?.online);
    badge.textContent = hostStatus(h);
    badge.className = `badge ${online ? 'badge-online' : 'badge-offline'}`;
    badge.title = h?.stale
      ? 'the server refused a change from this agent and waits for its full state: the graph may be behind'
      : h?.lastSeen
        ? `last seen ${new Date(h.lastSeen).toLocaleString()}`
        : 'no agent connection yet';
  }
}

function renderNetworkOptions() {
  const select = $('#network-filter');
  const names = new Set();
  for (const h of Object.values(hosts)) for (const id of h.bridges) names.add(h.links.get(id).name);
  const sorted = [...names].sort();
  const current = [...select.options].slice(1).map((option) => option.value);
  if (current.join('\n') === sorted.join('\n')) return;
  select.replaceChildren(el('option', { value: '' }, 'All networks'), ...sorted.map((name) => el('option', { value: name }, name)));
  select.value = names.has(filters.network) ? filters.network : '';
}

/** After a filter changed: hide what it hides, then say what is shown and what is hidden. */
function filtersChanged() {
  applyFilters(cy.elements());
  renderSummary();
  tableView.refresh();
}

/** Hosts, namespaces and interfaces in the model, and how many of them the filters hide. */
function countElements() {
  const counts = { hosts: 0, namespaces: 0, links: 0, hidden: { hosts: 0, namespaces: 0, links: 0 } };
  const active = filtersActive();
  // A folded namespace or interface is hidden with the group node that stands for it.
  const hidden = (id) => {
    const node = cy.getElementById(id);
    return node.nonempty() && (node.hasClass('filtered') || node.ancestors('.filtered').nonempty());
  };
  for (const h of Object.values(hosts)) {
    counts.hosts += 1;
    counts.namespaces += h.nsLinks.size;
    counts.links += h.links.size;
    if (!active) continue;
    if (hidden(h.name)) {
      counts.hidden.hosts += 1;
      counts.hidden.namespaces += h.nsLinks.size;
      counts.hidden.links += h.links.size;
      continue;
    }
    for (const netns of h.nsLinks.keys()) {
      if (hidden(h.folded.get(netns)?.group ?? ids.ns(h.name, netns))) counts.hidden.namespaces += 1;
    }
    for (const id of h.links.keys()) {
      if (hidden(h.representative(id))) counts.hidden.links += 1;
    }
  }
  return counts;
}

function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function renderSummary() {
  const counts = countElements();
  const { hidden } = counts;
  const shownOf = (total, off, noun) => (off ? `${total - off} of ${plural(total, noun)}` : plural(total, noun));
  const parts = [
    shownOf(counts.hosts, hidden.hosts, 'host'),
    shownOf(counts.namespaces, hidden.namespaces, 'namespace'),
    shownOf(counts.links, hidden.links, 'interface'),
  ];
  if (hidden.hosts + hidden.namespaces + hidden.links) parts.push('the rest hidden by filters');
  if (largeGraph) parts.push('large-graph mode');
  if (grouping) parts.push('single-veth endpoints grouped per bridge');
  $('#graph-summary').textContent = parts.join(' · ');
  document.body.dataset.largeGraph = String(largeGraph);
  renderFilterEmpty(counts);
}

/** Filters that leave no interface on screen say so, with what they hide, instead of a blank canvas. */
function renderFilterEmpty(counts) {
  const box = $('#filter-empty');
  const shown = (node) => !node.hasClass('filtered') && node.ancestors('.filtered').empty();
  const empty = filtersActive() && counts.links > 0 && !cy.nodes('.link, .group').some(shown);
  box.hidden = !empty;
  if (!empty) return;
  const { hidden } = counts;
  const what = [
    hidden.hosts && plural(hidden.hosts, 'host'),
    hidden.namespaces && plural(hidden.namespaces, 'namespace'),
    hidden.links && plural(hidden.links, 'interface'),
  ].filter(Boolean);
  $('#filter-empty-counts').textContent = `The filters hide ${what.join(', ')}.`;
}

function clearFilters() {
  filters.hiddenHosts.clear();
  filters.hiddenKinds.clear();
  filters.network = '';
  for (const input of document.querySelectorAll('#host-filters input, #kind-filters input')) input.checked = true;
  $('#network-filter').value = '';
  filtersChanged();
}

function renderEmptyState() {
  const empty = cy.nodes().empty() || Object.values(hosts).every((h) => h.nsLinks.size === 0);
  $('#empty-state').hidden = !empty;
  if (!empty) return;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  $('#agent-command').textContent =
    `python3 -I switchboard-agent.pyz --url ${scheme}://${location.host}/ws/agent/ --token-file /etc/switchboard/agent.token`;
}

// ---------------------------------------------------------------------------------------------
// Details panel

let selected = null; // {id, host} of the element shown in the panel

/** A tiny DOM builder: el('a', {href: '#'}, 'text', child, ...). Text is never parsed as HTML. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === 'class') node.className = value;
    else if (name === 'checked') node.checked = value;
    else node.setAttribute(name, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

function selectLink(id, label) {
  return el('button', { type: 'button', class: 'link-button', 'data-select': id }, label);
}

function facts(rows) {
  return el(
    'dl',
    { class: 'facts' },
    rows.filter(([, value]) => value !== null && value !== undefined && value !== '').map(([term, value]) => [el('dt', {}, term), el('dd', {}, value)]),
  );
}

function section(title, content, emptyText) {
  const isEmpty = Array.isArray(content) ? content.length === 0 : !content;
  return el('section', { class: 'panel-section' }, el('h3', {}, title), isEmpty ? el('p', { class: 'muted' }, emptyText) : content);
}

function table(headers, rows, rowClass = () => '') {
  if (!rows.length) return [];
  return el(
    'table',
    { class: 'compact' },
    el('thead', {}, el('tr', {}, headers.map((header) => el('th', { scope: 'col' }, header)))),
    el('tbody', {}, rows.map((row) => el('tr', { class: rowClass(row) }, row.cells.map((cell) => el('td', {}, cell ?? '—'))))),
  );
}

function inNamespace(h, kind, netns) {
  return Object.values(h.state[kind]).filter((object) => object.netns === netns);
}

function addressList(addresses, withInterface) {
  return addresses
    .sort((a, b) => a.family - b.family || a.address.localeCompare(b.address))
    .map((a) => el('li', {}, el('code', {}, `${a.address}/${a.prefixlen}`), ` ${withInterface ? `on ${a.ifname ?? a.ifindex} ` : ''}(${a.scope})`));
}

/** Routes of one namespace, or only those leaving through one of its interfaces (`link`). */
function routeTable(h, netns, link = null) {
  const routes = inNamespace(h, 'routes', netns)
    .filter((r) => !link || (r.oif !== null && r.oif !== undefined ? r.oif === link.index : r.dev === link.name))
    .sort((a, b) => a.family - b.family || a.dst.localeCompare(b.dst, undefined, { numeric: true }));
  const rows = table(
    ['Destination', 'Gateway', 'Device', 'Protocol', 'Metric'],
    routes.map((r) => ({
      cells: [
        el('code', {}, r.dst),
        r.gateway ? `via ${r.gateway}${r.onlink ? ' onlink' : ''}` : 'direct',
        r.dev,
        r.protocol,
        r.metric === null || r.metric === undefined ? null : String(r.metric),
      ],
    })),
  );
  // Prefixes never wrap: a wide table scrolls sideways inside the panel.
  return Array.isArray(rows) ? rows : el('div', { class: 'panel-scroll' }, rows);
}

function renderLinkDetails(h, id, link) {
  const kind = linkKind(link);
  const peerId = h.peerId(link);
  const bridgeId = h.bridgeOf(link);
  const peerLabel = link.peer ? `${link.peer.name ?? `#${link.peer.index}`} in ${link.peer.netns}` : null;
  const addresses = Object.values(h.state.addresses).filter((a) => a.netns === link.netns && a.ifindex === link.index);
  const neighbours = Object.values(h.state.neighbours).filter((n) => n.netns === link.netns && n.ifindex === link.index);
  const fdb = Object.values(h.state.fdb).filter(
    (f) => f.netns === link.netns && (f.ifindex === link.index || (kind === 'bridge' && f.master === link.name)),
  );
  const vx = link.vxlan;
  const underlay = vx?.underlay ? h.links.get(ids.link(h.name, link.netns, vx.underlay))?.name ?? `#${vx.underlay}` : null;
  const group = h.groups.get(ids.group(id));
  return [
    el('p', { class: 'panel-sub' }, `${kind} · namespace `, selectLink(ids.ns(h.name, link.netns), link.netns), ` · host ${h.name}`),
    facts([
      ['Kind', link.kind ?? '(none)'],
      ['State', `${link.state}${link.up ? ', admin up' : ', admin down'}`],
      ['MTU', String(link.mtu)],
      ['MAC', link.mac && el('code', {}, link.mac)],
      ['Index', String(link.index)],
      ['Master', link.master && (bridgeId ? selectLink(bridgeId, link.master) : link.master)],
      ['Alias', link.alias],
      ['Peer', peerLabel && (peerId && h.links.has(peerId) ? selectLink(peerId, peerLabel) : peerLabel)],
    ]),
    vx &&
      section(
        'VXLAN',
        facts([
          ['VNI', String(vx.vni)],
          ['Local', vx.local],
          ['Group', vx.group],
          ['Remote', vx.remote],
          ['Port', String(vx.dstport)],
          ['Learning', vx.learning ? 'yes' : 'no'],
          ['Underlay', underlay],
        ]),
      ),
    kind === 'bridge' && grouping && (group || expanded.has(id))
      ? section(
          'Endpoints',
          group
            ? el('button', { type: 'button', class: 'button', 'data-expand': id }, `Show ${group.size} grouped endpoints`)
            : el('button', { type: 'button', class: 'button', 'data-collapse': id }, 'Group endpoints again'),
        )
      : null,
    section('Addresses', addresses.length ? el('ul', { class: 'plain' }, addressList(addresses, false)) : null, 'No addresses.'),
    section(`Routes via ${link.name}`, routeTable(h, link.netns, link), `No routes leave through ${link.name}.`),
    section(
      'Neighbours',
      table(
        ['Address', 'MAC', 'State'],
        neighbours.map((n) => ({ cells: [n.address, n.mac, n.state] })),
      ),
      'No neighbour entries on this interface.',
    ),
    section(
      'FDB',
      table(
        ['MAC', 'Device', 'Remote', 'VLAN', 'VNI', 'State', 'Entry'],
        fdb.map((f) => ({ cells: [f.mac, f.ifname, f.dst, f.vlan, f.vni, f.state, f.self_entry ? 'self' : 'master'] })),
      ),
      'No forwarding entries.',
    ),
  ];
}

function renderNamespaceDetails(h, netns) {
  const namespace = h.namespaces.get(netns);
  const links = [...(h.nsLinks.get(netns) ?? [])].map((id) => [id, h.links.get(id)]).sort((a, b) => a[1].index - b[1].index);
  const neighbours = inNamespace(h, 'neighbours', netns);
  return [
    el('p', { class: 'panel-sub' }, `namespace · host ${h.name}`),
    facts([
      ['Kind', namespace?.kind ?? 'unknown'],
      ['Inode', namespace && String(namespace.inode)],
      ['Neighbours', String(neighbours.length)],
    ]),
    section(
      'Interfaces',
      links.length
        ? el('ul', { class: 'plain' }, links.map(([id, link]) => el('li', {}, selectLink(id, link.name), ` ${linkKind(link)}, ${link.state}`)))
        : null,
      'No interfaces.',
    ),
    section('Addresses', el('ul', { class: 'plain' }, addressList(inNamespace(h, 'addresses', netns), true)), 'No addresses.'),
    section(`Routes in ${netns}`, routeTable(h, netns), 'No routes in this namespace.'),
  ];
}

function renderHostDetails(h) {
  return [
    el('p', { class: 'panel-sub' }, 'host'),
    facts([
      ['Status', hostStatus(h) === 'offline' && h.lastSeen ? `offline since ${formatTime(h.lastSeen)}` : hostStatus(h)],
      ['Last seen', h.lastSeen && new Date(h.lastSeen).toLocaleString()],
      ['Agent', h.agentVersion],
      ['Sequence', h.seq === null ? null : String(h.seq)],
      ['Namespaces', String(h.nsLinks.size)],
      ['Interfaces', String(h.links.size)],
    ]),
  ];
}

function renderDetails() {
  const panel = $('#details');
  if (!selected) {
    panel.hidden = true;
    return;
  }
  const h = hosts[selected.host];
  const node = cy.getElementById(selected.id);
  const type = node.nonempty() ? node.data('type') : selected.type;
  let title = selected.id;
  let body;
  if (type === 'link' && h?.links.has(selected.id)) {
    const link = h.links.get(selected.id);
    title = link.name;
    body = renderLinkDetails(h, selected.id, link);
  } else if (type === 'namespace' && h && node.nonempty()) {
    title = node.data('netns');
    body = renderNamespaceDetails(h, title);
  } else if (type === 'host' && h) {
    title = h.name;
    body = renderHostDetails(h);
  } else {
    body = [el('p', { class: 'muted' }, 'This object no longer exists.')];
  }
  $('#details-title').textContent = title;
  $('#details-body').replaceChildren(...body.filter(Boolean));
  panel.hidden = false;
}

/** Show one element: open its group if it is folded, select it, centre it and open the panel. */
function selectElement(id, host) {
  const h = hosts[host];
  const node = cy.getElementById(id);
  if (node.empty() && h) {
    const group = h.representative(id);
    if (group !== id) {
      expandGroup(h, group.slice(0, -'|endpoints'.length)).then(() => selectElement(id, host));
      return;
    }
  }
  selected = { id, host, type: node.nonempty() ? node.data('type') : null };
  renderDetails();
  tableView.refresh();
  cy.resize(); // the panel may just have narrowed the graph
  cy.elements(':selected').unselect();
  if (node.nonempty()) {
    node.select();
    revealNode(node);
  }
}

/**
 * Keep the view where the user had it: zoom never changes, and the graph pans only when the node
 * is (partly) outside the visible graph (off-screen, or where the panel just took the space), and
 * then just enough to bring it in with a small margin.
 */
function revealNode(node, margin = 40) {
  cy.stop(true, true); // no earlier animation may move the view afterwards
  const box = node.renderedBoundingBox({ includeLabels: false, includeOverlays: false });
  const width = cy.width();
  const height = cy.height();
  const shift = (low, high, size) => {
    const room = Math.min(margin, Math.max(0, (size - (high - low)) / 2));
    if (high - low > size - 2 * room) {
      return high < 0 || low > size ? size / 2 - (low + high) / 2 : 0; // bigger than the view: only if out of sight
    }
    if (low < room) return room - low;
    if (high > size - room) return size - room - high;
    return 0;
  };
  const dx = shift(box.x1, box.x2, width);
  const dy = shift(box.y1, box.y2, height);
  if (dx || dy) cy.panBy({ x: dx, y: dy });
}

function closeDetails() {
  selected = null;
  cy.elements(':selected').unselect();
  renderDetails();
}

function expandGroup(h, bridgeId) {
  const groupNode = cy.getElementById(ids.group(bridgeId));
  const members = [...(h.groups.get(ids.group(bridgeId)) ?? [])].sort(byNaturalOrder);
  if (groupNode.nonempty()) {
    const origin = gridOrigin(cy.getElementById(h.name).boundingBox(), groupNode.position(), members.length);
    const columns = Math.ceil(Math.sqrt(members.length));
    members.forEach((netns, i) => {
      const cell = { x: origin.x + (i % columns) * GRID_DX, y: origin.y + Math.floor(i / columns) * GRID_DY };
      [...(h.nsLinks.get(netns) ?? [])].forEach((id, j) => pending.hints.set(id, { x: cell.x + j * 36, y: cell.y }));
    });
  }
  expanded.add(bridgeId);
  members.forEach((netns) => refold(h, netns));
  return scheduleFlush().then(() => {
    const opened = cy.collection(members.map((netns) => cy.getElementById(ids.ns(h.name, netns))));
    cy.animate({ fit: { eles: opened.union(cy.getElementById(bridgeId)), padding: 60 }, duration: 300 });
  });
}

const GRID_DX = 110; // grid cell of an opened endpoint namespace
const GRID_DY = 90;

/** Top-left cell of a grid for `count` namespaces just outside `box`, on the side nearest `near`. */
function gridOrigin(box, near, count) {
  const columns = Math.ceil(Math.sqrt(count));
  const width = (columns - 1) * GRID_DX;
  const height = (Math.ceil(count / columns) - 1) * GRID_DY;
  const gap = 80;
  const sides = [
    [near.x - box.x1, { x: box.x1 - gap - width, y: near.y - height / 2 }],
    [box.x2 - near.x, { x: box.x2 + gap, y: near.y - height / 2 }],
    [near.y - box.y1, { x: near.x - width / 2, y: box.y1 - gap - height }],
    [box.y2 - near.y, { x: near.x - width / 2, y: box.y2 + gap }],
  ];
  return sides.reduce((best, side) => (side[0] < best[0] ? side : best))[1];
}

/** Sorts "n2" before "n10". */
function byNaturalOrder(a, b) {
  return a.localeCompare(b, undefined, { numeric: true });
}

function collapseGroup(h, bridgeId) {
  expanded.delete(bridgeId);
  const bridge = h.links.get(bridgeId);
  for (const port of h.ports.get(`${bridge.netns}|${bridge.name}`) ?? []) {
    const peer = h.links.get(port)?.peer;
    if (peer) refold(h, peer.netns);
  }
  return scheduleFlush();
}

// ---------------------------------------------------------------------------------------------
// Export

function download(filename, blob) {
  const url = URL.createObjectURL(blob);
  const link = el('a', { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function stamp() {
  return new Date().toISOString().replace(/[:]/g, '').replace(/\..*/, '');
}

/** The state per host as this page holds it (what the JSON export writes). */
function exportState() {
  return {
    exported_at: new Date().toISOString(),
    hosts: Object.fromEntries(
      Object.values(hosts).map((h) => [
        h.name,
        {
          online: h.online,
          stale: h.stale,
          seq: h.seq,
          last_seen: h.lastSeen,
          agent_version: h.agentVersion,
          state: h.state,
        },
      ]),
    ),
  };
}

const exporters = {
  png: () => download(`switchboard-${stamp()}.png`, cy.png({ output: 'blob', full: true, scale: 2, bg: '#ffffff', maxWidth: 8000, maxHeight: 8000 })),
  svg: () => download(`switchboard-${stamp()}.svg`, new Blob([cy.svg({ full: true, bg: '#ffffff' })], { type: 'image/svg+xml' })),
  json: () => download(`switchboard-${stamp()}.json`, new Blob([JSON.stringify(exportState(), null, 2)], { type: 'application/json' })),
};

// ---------------------------------------------------------------------------------------------
// Tables beside the graph (static/js/tables.js), on tabs: Graph | Endpoints | Networks | Routes

const tableView = createTableView({
  panel: $('#tables'),
  context: () => ({
    hosts,
    filters,
    domain: filters.network ? networkDomain(filters.network) : null,
    selectedId: selected?.id ?? null,
  }),
  // A row shows its element on the graph, selected, with its details.
  onSelect: (row) => {
    showView('graph');
    selectElement(row.id, row.host);
  },
  download,
});

const viewTabs = [...document.querySelectorAll('.view-tabs [role="tab"]')];

function showView(view, { focus = false } = {}) {
  for (const tab of viewTabs) {
    const on = tab.dataset.view === view;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    if (on && focus) tab.focus();
  }
  if (view === 'graph') {
    tableView.hide();
    cy.resize();
    return;
  }
  const bar = $('.graph-bar');
  $('#tables').style.top = `${bar.offsetTop + bar.offsetHeight}px`;
  tableView.show(view);
}

for (const tab of viewTabs) {
  tab.addEventListener('click', () => showView(tab.dataset.view));
  // Arrow keys move along the tab strip (and show that view), Home and End go to its ends.
  tab.addEventListener('keydown', (event) => {
    const at = viewTabs.indexOf(tab);
    const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: viewTabs.length - 1 }[event.key];
    if (to === undefined) return;
    event.preventDefault();
    showView(viewTabs[(to + viewTabs.length) % viewTabs.length].dataset.view, { focus: true });
  });
}

// ---------------------------------------------------------------------------------------------
// Socket

/** The browser socket: reconnects with exponential backoff (0.5 s doubling to 30 s, with jitter). */
class Connection {
  constructor(url) {
    this.url = url;
    this.failures = 0;
    this.socket = null;
  }

  open() {
    setStatus('connecting');
    this.socket = new WebSocket(this.url);
    this.socket.addEventListener('open', () => {
      this.failures = 0;
      setStatus('open');
    });
    this.socket.addEventListener('message', (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        console.warn('switchboard: unparsable frame', event.data);
        return;
      }
      handleFrame(frame);
    });
    this.socket.addEventListener('close', () => {
      this.socket = null;
      const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** this.failures) * (0.5 + Math.random() / 2);
      this.failures += 1;
      setStatus('closed', delay, this.failures);
      setTimeout(() => this.open(), delay);
    });
  }

  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }
}

let socketStatus = 'connecting';

function setStatus(status, delay = 0, failures = 0) {
  socketStatus = status;
  document.body.dataset.wsStatus = status === 'open' ? 'open' : 'closed';
  const pill = $('#conn-status');
  if (status === 'open') renderConnectedStatus();
  else if (status === 'connecting') {
    pill.className = 'status status-connecting';
    pill.textContent = 'Connecting…';
    pill.title = '';
  } else {
    const hint = failures >= 4 ? ' — if this persists, reload the page (your session may have expired)' : '';
    pill.className = 'status status-closed';
    pill.textContent = `Reconnecting in ${Math.max(1, Math.round(delay / 1000))} s${hint}`;
    pill.title = '';
  }
}

/** The pill while the socket is open: green only while every host the server reported is online. */
function renderConnectedStatus() {
  if (socketStatus !== 'open') return;
  const pill = $('#conn-status');
  const reported = Object.values(hosts).sort((a, b) => byNaturalOrder(a.name, b.name));
  const offline = reported.filter((h) => !h.online);
  const resyncing = reported.filter((h) => h.online && h.stale);
  const parts = ['Connected'];
  if (offline.length) {
    parts.push(reported.length === 1 ? `${offline[0].name} offline` : `${offline.length} of ${reported.length} hosts offline`);
  }
  if (resyncing.length) parts.push(`${resyncing.length} resyncing`);
  pill.className = `status ${offline.length || resyncing.length ? 'status-degraded' : 'status-open'}`;
  pill.textContent = parts.join(' · ');
  pill.title = reported
    .map((h) => `${h.name}: ${!h.online && h.lastSeen ? `offline since ${formatTime(h.lastSeen)}` : hostStatus(h)}`)
    .join('\n');
  pill.dataset.offlineHosts = String(offline.length);
}

// ---------------------------------------------------------------------------------------------
// Wiring

cy.on('zoom', updateLabelDetail);
cy.on('tap', 'node', (event) => {
  const node = event.target;
  const { type, host, bridge } = node.data();
  if (type === 'group') {
    expandGroup(hosts[host], bridge);
    return;
  }
  selectElement(node.id(), host);
});
cy.on('tap', (event) => {
  if (event.target === cy) closeDetails();
});

$('#details').addEventListener('click', (event) => {
  const button = event.target.closest('button');
  if (!button || !selected) return;
  const h = hosts[selected.host];
  if (button.dataset.select) selectElement(button.dataset.select, selected.host);
  else if (button.dataset.expand) expandGroup(h, button.dataset.expand);
  else if (button.dataset.collapse) collapseGroup(h, button.dataset.collapse);
});
$('#details-close').addEventListener('click', closeDetails);
$('#filter-clear').addEventListener('click', clearFilters);

const search = $('#search');
search.addEventListener('input', () => setQuery(search.value));
search.addEventListener('keydown', (event) => {
  if (event.key !== 'Enter') return;
  const hits = cy.nodes('.match');
  if (hits.nonempty()) cy.animate({ fit: { eles: hits, padding: 80 }, duration: 300 });
});

document.addEventListener('keydown', (event) => {
  const typing = event.target.closest('input, textarea, select, [contenteditable]');
  if (event.key === '/' && !typing) {
    event.preventDefault();
    search.focus();
    search.select();
  } else if (event.key === 'Escape') {
    if (search.value) {
      search.value = '';
      setQuery('');
    } else {
      closeDetails();
    }
    if (event.target === search) search.blur();
  }
});

$('#host-filters').addEventListener('change', (event) => {
  const { value, checked } = event.target;
  if (checked) filters.hiddenHosts.delete(value);
  else filters.hiddenHosts.add(value);
  filtersChanged();
});
$('#network-filter').addEventListener('change', (event) => {
  filters.network = event.target.value;
  filtersChanged();
});
$('#kind-filters').addEventListener('change', (event) => {
  const { value, checked } = event.target;
  if (checked) filters.hiddenKinds.delete(value);
  else filters.hiddenKinds.add(value);
  filtersChanged();
});
$('#group-endpoints').addEventListener('change', (event) => {
  groupingChosenByUser = true;
  setGrouping(event.target.checked);
  scheduleFlush();
});
$('#btn-relayout').addEventListener('click', () => runLayout(cy.elements(), { animate: cy.nodes().length < 400, fit: true }));
// Filtered nodes carry the class itself (ele.visible() lags class changes until the next render).
$('#btn-fit').addEventListener('click', () => cy.animate({ fit: { eles: cy.nodes().not('.filtered'), padding: 40 }, duration: 300 }));
for (const button of document.querySelectorAll('[data-export]')) {
  button.addEventListener('click', () => exporters[button.dataset.export]());
}

// The test hook (tests/browser/): `feed` applies one frame as if it came from the socket and
// resolves once the graph shows it; `whenIdle` resolves once every frame received is drawn.
const switchboard = {
  cy,
  state: hosts,
  ready,
  lastDeltaAppliedAt: null,
  feed: handleFrame,
  whenIdle: () => (pending.scheduled ? scheduleFlush() : lastFlushDone),
  exportState,
  tables: tableView,
  showView,
  get largeMode() {
    return largeGraph;
  },
};
window.switchboard = switchboard;

renderKindFilters();
renderLegend();
renderHostFilters();
renderSummary();
renderEmptyState();
connection = new Connection(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${root.dataset.wsPath}`);
connection.open();
