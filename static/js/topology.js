// Switchboard topology page: a live graph of every host's namespaces, interfaces, bridges and veths,
// with tables beside it. This module wires the others together:
//
// - model.js holds the state per host as the server sent it (socket.js brings the frames) and marks
//   the graph ids each change affects; one flush per animation frame reconciles only those ids with
//   the Cytoscape graph (graph.js), so a delta never rebuilds the graph.
// - Positions: the user's saved layout (saved-layout.js) first; a host with nothing placed gets the
//   network-centric layout (layout.js, computed in a Web Worker with the page showing progress);
//   anything new later is placed next to its neighbours and nothing already on screen moves.
// - filters.js, panels.js, tables.js and style.js draw the sidebar, details, tables and looks;
//   operations.js lists the plan/apply/destroy operations running on hosts as they progress.
// - Overlays: tunnels between the VXLAN devices of different hosts come from their FDB (model.js);
//   overlay.js keeps the overlay check of every network spanning hosts, drawn as a findings badge
//   on each host's VXLAN device, listed in its panel with a Re-apply button for operators.
// - explain.js: "why can't A reach B" (operators): the Explain path panel, its answer lit on the graph.
// - traffic.js, traffic-view.js: the Traffic layer ("talks to" edges from each host's conntrack,
//   toggled in the graph bar) and the Traffic table.
// - shaping.js: a link's rate limit or impairment (operators, from its details), shown on its veth edge.
//
// Needs cytoscape and cytoscape-svg loaded before it (templates/topology/_scripts.html).

import { api } from './api.js';
import { $, download, el, formatTime, plural } from './dom.js';
import { createExplain } from './explain.js';
import { shapeLink, unshapeLink } from './shaping.js';
import {
  applyFilters,
  clearFilters,
  countElements,
  filters,
  filtersActive,
  renderFilterEmpty,
  renderHostFilters,
  renderKindFilters,
  renderNetworkOptions,
} from './filters.js';
import { applyPositions, createGraph, layoutHosts, placeNew, reconcile } from './graph.js';
import { createGraphMenu } from './graph-menu.js';
import { layoutScene } from './layout.js';
import { byNaturalOrder, FOLD_ABOVE, groupBridge, hostStatus, ids, TopologyModel } from './model.js';
import { createOperationsView, EarlyFrames } from './operations.js';
import { OverlayWatch } from './overlay.js';
import { hostDetails, linkDetails, namespaceDetails } from './panels.js';
import { SavedLayout } from './saved-layout.js';
import { Connection } from './socket.js';
import { renderLegend, stylesheet } from './style.js';
import { createTableView, TABLES } from './tables.js';
import { TRAFFIC_TABLE, trafficCount } from './traffic.js';
import { createTrafficLayer } from './traffic-view.js';

const LARGE_GRAPH_NODES = 1500; // beyond: simplified drawing (haystack edges, no arrows)
// On connect the server sends one snapshot per host: the first layout waits this long at most for
// the snapshots of every host named in the page, so it lays them out together.
const FIRST_SNAPSHOTS_WAIT_MS = 500;
// Level of detail: below this zoom an interface's label is its name only.
const DETAIL_ZOOM = 0.9;
const FIT_MAX_ZOOM = 1.25; // fitting a small graph does not blow it up
const HOST_GAP = 160;
// Opening the groups a search lit (Enter) stops at this many endpoints.
const SEARCH_OPENS_AT_MOST = 300;

const root = $('#topology');
const knownHosts = JSON.parse($('#topology-hosts').textContent); // hosts the web app knows, by name
const savedLayout = new SavedLayout(JSON.parse($('#topology-layout')?.textContent ?? 'null'));
savedLayout.onError = (message) => {
  console.warn('switchboard: the layout was not saved:', message);
  document.body.dataset.layoutSaved = 'error';
};

const model = new TopologyModel();
const editConfig = JSON.parse($('#topology-edit')?.textContent ?? 'null'); // {can_operate, networks_url, operations_url}
const operationsView = createOperationsView($('#operations'), {
  cancel: editConfig?.can_operate
    ? (id) => api(`${editConfig.operations_url}${encodeURIComponent(id)}/cancel/`, { method: 'POST' })
    : null,
});
const cy = createGraph($('#cy'), { webgl: new URLSearchParams(location.search).get('renderer') === 'webgl' });
let largeGraph = false; // simplified drawing, switched on for good once a graph gets large
let detailedLabels = true; // the stylesheet in use draws full labels
let connection = null;
const trafficLayer = createTrafficLayer({
  cy,
  model,
  toggle: $('#traffic-toggle'),
  savedPosition: (id) => savedLayout.get(id),
  onChange: () => {
    if (!trafficLayer.on && ['traffic', 'outside'].includes(selected?.type)) closeDetails();
    if (filtersActive() || filters.highlight) applyFilters(cy, model, cy.elements());
  },
});

// ---------------------------------------------------------------------------------------------
// Frames and flushes

let firstSnapshotAt = null;
const flushing = { scheduled: false, waiters: [] };

/** Apply one frame to the model; the graph follows at the next flush (the returned promise). */
function handleFrame(frame) {
  if (frame?.type === 'operation.status') {
    operationsView.update(frame.operation);
    reapplyProgress(frame.operation);
    // a progress report of a running operation changes no topology's status
    if (frame.operation?.topology && !('progress' in frame.operation)) {
      refreshDesiredSoon();
      overlayWatch?.refresh(frame.operation.topology);
    }
    return Promise.resolve();
  }
  if (frame?.type === 'desired.changed') {
    refreshDesiredSoon();
    if (frame.topology) overlayWatch?.refresh(frame.topology);
    return Promise.resolve();
  }
  if (!['topology.snapshot', 'topology.delta', 'host.status'].includes(frame?.type)) {
    console.debug('switchboard: ignoring frame', frame);
  }
  if (model.apply(frame)) connection?.send({ type: 'resync' });
  if (frame?.type === 'topology.snapshot') firstSnapshotAt ??= performance.now();
  return scheduleFlush();
}

function scheduleFlush() {
  const done = new Promise((resolve) => flushing.waiters.push(resolve));
  if (!flushing.scheduled) {
    flushing.scheduled = true;
    // One flush per frame however many socket frames arrived; a hidden tab only queues ids.
    requestAnimationFrame(flush);
  }
  return done;
}

let drawn = false; // the first draw has happened
let lastFlushDone = Promise.resolve(); // settles when the latest flush (and its layouts) finished
let resolveReady;
const ready = new Promise((resolve) => (resolveReady = resolve));
let placing = Promise.resolve(); // placements run one after the other

function flush() {
  if (!drawn && model.pending.snapshot && !firstSnapshotsIn()) {
    setTimeout(() => requestAnimationFrame(flush), 50); // still scheduled: frames keep queueing
    return;
  }
  flushing.scheduled = false;
  const dirty = model.takeDirty();
  const firstDraw = !drawn && model.pending.snapshot;
  // Nothing is drawn until every new element has its place: the batch ends in placeNodes (after
  // the layout worker answered, when a whole host is new), or right here when nothing is new.
  cy.startBatch();
  const placeless = reconcile(cy, dirty);
  for (const [id, entry] of dirty) {
    if (gone(entry)) savedLayout.remove(id); // folded away it keeps its place, for when it opens again
  }
  const leaves = placeless.filter((node) => node.isChildless());
  if (firstDraw) drawn = true;
  if (leaves.nonempty() || firstDraw) {
    placing = placing
      .then(() => placeNodes(leaves.filter((n) => !n.removed()), { firstDraw }))
      .catch((error) => console.error('switchboard: placing new elements failed:', error)); // the next ones still get placed
  } else {
    cy.endBatch();
  }
  // What is drawn decides, not the model: folded endpoints cost nothing to draw.
  if (!largeGraph && cy.nodes().length > LARGE_GRAPH_NODES) enterLargeGraphMode();
  refreshView(placeless);
  const waiters = flushing.waiters.splice(0);
  const wasDelta = model.pending.delta;
  model.pending.snapshot = model.pending.delta = false;
  lastFlushDone = placing.then(() => {
    trafficLayer.sync(); // once what its edges join is drawn and placed
    if (firstDraw) resolveReady();
    if (wasDelta) switchboard.lastDeltaAppliedAt = Date.now();
    for (const resolve of waiters) resolve();
  });
}

/** Whether the object behind a graph id left the model (not merely folded into a group). */
function gone({ h, type, key }) {
  if (type === 'link') return !h.links.has(key);
  if (type === 'ns') return !h.namespaces.has(key) && !h.nsLinks.has(key);
  if (type === 'group') return !h.groups.has(key);
  if (type === 'vtep') return !h.vteps.has(key);
  if (type === 'service') return !h.services.has(key);
  return false;
}

function firstSnapshotsIn() {
  const waited = performance.now() - firstSnapshotAt > FIRST_SNAPSHOTS_WAIT_MS;
  return waited || knownHosts.every((name) => model.hosts[name] && model.hosts[name].seq !== null);
}

// ---------------------------------------------------------------------------------------------
// Desired topologies (the Networks page): their status on the elements they made

const desiredUrl = JSON.parse($('#topology-desired-url')?.textContent ?? 'null');
let desiredTimer = null;

/** Read every desired topology's status again (after its operations changed), at most every 300 ms. */
function refreshDesiredSoon() {
  if (!desiredUrl || desiredTimer) return;
  desiredTimer = setTimeout(() => {
    desiredTimer = null;
    refreshDesired();
  }, 300);
}

async function refreshDesired() {
  if (!desiredUrl) return;
  try {
    const { status, data } = await api(`${desiredUrl}?page_size=2000`);
    if (status !== 200) return;
    model.setDesired(data.results ?? []);
    overlayWatch?.setTopologies(data.results ?? []);
    scheduleFlush();
  } catch (error) {
    console.warn('switchboard: could not read the desired topologies:', error);
  }
}

// ---------------------------------------------------------------------------------------------
// Overlays of networks spanning hosts: their consistency check, and re-applying one host

// The networks API beside the desired topologies' (/api/v1/topologies/ -> /api/v1/networks/).
const networksUrl = desiredUrl ? new URL('../networks/', new URL(desiredUrl, location.href)).pathname : null;
const overlayWatch = networksUrl
  ? new OverlayWatch({
      api,
      networksUrl,
      onAnswer: (topology, network, answer) => {
        if (model.setOverlay(topology, network, answer)) scheduleFlush();
      },
    })
  : null;
const reapplies = new Map(); // 'topology|host' -> {id, status, error, progress}: the panel's Re-apply

/** POST apply ?host= of one host's share of a spanning topology; its progress comes as frames. */
async function reapply(topology, host) {
  const key = `${topology}|${host}`;
  reapplies.set(key, { id: null, status: 'asking' });
  renderDetails();
  const url = `${desiredUrl}${encodeURIComponent(topology)}/apply/?${new URLSearchParams({ host })}`;
  let answer;
  try {
    answer = await api(url, { method: 'POST', body: {} });
  } catch (error) {
    answer = { status: 0, data: { message: String(error) } };
  }
  const { status, data } = answer;
  if (status !== 202) {
    reapplies.set(key, { id: null, status: 'refused', error: data?.message ?? data?.detail ?? String(status) });
  } else {
    const early = reappliedEarly.take(data.operation); // its frames may have come first (a fast apply)
    reapplies.set(key, early ? reapplyState(early) : { id: data.operation, status: data.status });
    operationsView.update({ id: data.operation, host, kind: 'apply', status: data.status, topology });
  }
  renderDetails();
}

const reappliedEarly = new EarlyFrames(); // frames that came before the answer to their request

function reapplyState(op) {
  return { id: op.id, status: op.status, error: op.error ?? null, progress: op.progress ?? null };
}

/** An operation.status frame for an apply asked from the panel: its status there. */
function reapplyProgress(op) {
  if (!op?.id) return;
  let mine = false;
  for (const [key, state] of reapplies) {
    if (state.id !== op.id) continue;
    mine = true;
    reapplies.set(key, reapplyState(op));
    renderDetails();
  }
  if (!mine && op.topology) reappliedEarly.remember(op);
}

// ---------------------------------------------------------------------------------------------
// Placement

/**
 * Give every new leaf a position: its saved one; for hosts with nothing placed yet, the full
 * layout (in the worker, side by side right of what is drawn); for the rest, a free spot next to
 * its neighbours. What the user had on screen never moves; what got a new place is saved.
 */
async function placeNodes(leaves, { firstDraw = false } = {}) {
  let batched = true;
  const endBatch = () => {
    if (batched) cy.endBatch();
    batched = false;
  };
  try {
    await placeInBatch(leaves, endBatch);
  } finally {
    endBatch();
  }
  if (firstDraw) fitReadable();
}

/** placeNodes inside flush's batch; `endBatch` ends it once the new hosts have their layout. */
async function placeInBatch(leaves, endBatch) {
  const unsaved = [];
  leaves.forEach((node) => {
    const p = savedLayout.get(node.id());
    if (p) node.position(p);
    else unsaved.push(node);
  });
  const fresh = new Set(unsaved.map((node) => node.id()));
  const leavesOf = (host) => (host.isChildless() ? host : host.descendants().filter((n) => n.isChildless()));
  const emptyHosts = cy.nodes('.host').filter((host) => leavesOf(host).every((n) => fresh.has(n.id())));
  if (emptyHosts.nonempty()) {
    const elements = emptyHosts.union(emptyHosts.descendants());
    showProgress(`Laying out ${elements.union(elements.connectedEdges()).length.toLocaleString()} elements…`);
    const positions = await layoutHosts(cy, model, emptyHosts.toArray(), computeLayout);
    const others = cy.nodes().filter((n) => n.isChildless() && !fresh.has(n.id()) && !emptyHosts.contains(n.ancestors('.host')));
    endBatch(); // bounding boxes are only right outside a batch
    const dx = others.nonempty() ? others.boundingBox().x2 + HOST_GAP : 0;
    applyPositions(cy, positions, { dx });
    hideProgress();
  } else {
    endBatch();
  }
  const inPlacedHosts = unsaved.filter((node) => !node.removed() && !emptyHosts.contains(node.ancestors('.host')));
  if (inPlacedHosts.length) cy.batch(() => placeNew(cy, model, inPlacedHosts));
  for (const node of unsaved) if (!node.removed()) savedLayout.set(node.id(), node.position());
}

let worker = null;
const jobs = new Map();
let nextJob = 0;

/** layout.js in a Web Worker, so the page stays responsive; on the main thread if workers fail. */
function computeLayout(scene) {
  try {
    worker ??= startWorker();
  } catch (error) {
    console.warn('switchboard: laying out on the main thread:', error);
    return layoutScene(scene);
  }
  return new Promise((resolve) => {
    nextJob += 1;
    jobs.set(nextJob, { resolve, scene });
    worker.postMessage({ id: nextJob, scene });
  });
}

function startWorker() {
  const started = new Worker(new URL('./layout-worker.js', import.meta.url), { type: 'module' });
  started.addEventListener('message', (event) => {
    jobs.get(event.data.id)?.resolve(event.data.positions);
    jobs.delete(event.data.id);
  });
  started.addEventListener('error', (event) => {
    console.warn('switchboard: layout worker failed, laying out on the main thread:', event.message);
    event.preventDefault();
    for (const { resolve, scene } of jobs.values()) resolve(layoutScene(scene));
    jobs.clear();
    worker = {
      postMessage: ({ id, scene }) => {
        jobs.get(id)?.resolve(layoutScene(scene));
        jobs.delete(id);
      },
    };
  });
  return started;
}

function showProgress(text) {
  const box = $('#layout-progress');
  box.textContent = text;
  box.hidden = false;
}

function hideProgress() {
  $('#layout-progress').hidden = true;
}

/** Fit what is shown, but never zoom in beyond FIT_MAX_ZOOM (a small graph stays its size). */
function fitReadable(eles = cy.nodes().not('.filtered'), animate = false) {
  if (eles.empty()) return;
  cy.stop(true, true);
  const zoom = Math.min(FIT_MAX_ZOOM, fitZoom(eles, 40));
  const box = eles.boundingBox();
  const pan = { x: cy.width() / 2 - zoom * (box.x1 + box.w / 2), y: cy.height() / 2 - zoom * (box.y1 + box.h / 2) };
  if (animate) cy.animate({ zoom, pan, duration: 300 });
  else cy.viewport({ zoom, pan });
}

function fitZoom(eles, padding) {
  const box = eles.boundingBox();
  const w = Math.max(1, cy.width() - 2 * padding);
  const h = Math.max(1, cy.height() - 2 * padding);
  return Math.max(cy.minZoom(), Math.min(cy.maxZoom(), w / Math.max(1, box.w), h / Math.max(1, box.h)));
}

/** The user asked for a new layout: every host laid out afresh, saved in place of the old. */
async function relayout() {
  const hostNodes = cy.nodes('.host').filter((host) => host.descendants().some((n) => n.isChildless()));
  if (hostNodes.empty()) return;
  showProgress(`Laying out ${cy.elements().length.toLocaleString()} elements…`);
  const positions = await layoutHosts(cy, model, hostNodes.toArray(), computeLayout);
  applyPositions(cy, positions);
  hideProgress();
  savedLayout.replaceAll(cy.nodes().filter((n) => n.isChildless()).map((n) => [n.id(), n.position()]));
  fitReadable(undefined, cy.nodes().length < 400);
}

// ---------------------------------------------------------------------------------------------
// Looks

function updateLabelDetail() {
  const want = cy.zoom() >= DETAIL_ZOOM;
  if (want === detailedLabels) return;
  detailedLabels = want;
  cy.style(stylesheet(largeGraph, want)); // once per crossing of the threshold, not per zoom step
}

function enterLargeGraphMode() {
  largeGraph = true;
  cy.style(stylesheet(true, detailedLabels));
  // Cytoscape reads these two only at start-up; the renderer holds the live values (3.34).
  const renderer = cy.renderer();
  renderer.textureOnViewport = true;
  renderer.hideEdgesOnViewport = true;
}

function setGrouping(on) {
  model.setGrouping(on);
  $('#group-endpoints').checked = on;
  return scheduleFlush();
}

// ---------------------------------------------------------------------------------------------
// Sidebar, summary, empty state

/** Everything besides the graph elements: filters, search, sidebar, panel, summary, empty state. */
function refreshView(added) {
  renderHostFilters(model, knownHosts);
  renderNetworkOptions(model);
  const lit = filters.highlight;
  filters.highlight = highlightOf(selected);
  if (filtersActive() || lit || filters.highlight) applyFilters(cy, model, cy.elements());
  else applyFilters(cy, model, added.union(added.connectedEdges()));
  renderDetails();
  renderSummary();
  renderEmptyState();
  renderConnectedStatus();
  tableView.refresh();
  renderTrafficEmpty();
  explain?.refresh(); // a redrawn element lost its explain classes
}

/** The Traffic table says why it is empty while no host reports a conversation. */
function renderTrafficEmpty() {
  $('#traffic-empty').hidden = tableView.current !== 'traffic' || trafficCount(Object.values(model.hosts)) > 0;
}

function setQuery(query) {
  filters.query = query;
  applyFilters(cy, model, cy.elements());
  tableView.refresh();
}

/** After a filter changed: hide what it hides, then say what is shown and what is hidden. */
function filtersChanged() {
  applyFilters(cy, model, cy.elements());
  renderSummary();
  tableView.refresh();
}

function renderSummary() {
  const counts = countElements(cy, model);
  const { hidden } = counts;
  const shownOf = (total, off, noun) => (off ? `${total - off} of ${plural(total, noun)}` : plural(total, noun));
  const parts = [
    shownOf(counts.hosts, hidden.hosts, 'host'),
    shownOf(counts.namespaces, hidden.namespaces, 'namespace'),
    shownOf(counts.links, hidden.links, 'interface'),
  ];
  if (hidden.hosts + hidden.namespaces + hidden.links) parts.push('the rest hidden by filters');
  if (largeGraph) parts.push('large-graph mode');
  const folded = Object.values(model.hosts).reduce((n, h) => n + h.groups.size, 0);
  if (folded) parts.push(`${plural(folded, 'network')} folded`);
  $('#graph-summary').textContent = parts.join(' · ');
  document.body.dataset.largeGraph = String(largeGraph);
  renderFilterEmpty(cy, counts);
}

function renderEmptyState() {
  const empty = cy.nodes().empty() || Object.values(model.hosts).every((h) => h.nsLinks.size === 0);
  $('#empty-state').hidden = !empty;
  if (!empty) return;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  $('#agent-command').textContent =
    `python3 -I switchboard-agent.pyz --url ${scheme}://${location.host}/ws/agent/ --token-file /etc/switchboard/agent.token`;
}

// ---------------------------------------------------------------------------------------------
// Details panel and selection

let selected = null; // {id, host, type} of the element shown in the panel

/** What a selection lights: a VXLAN device's overlay (its peers and their endpoints), else nothing. */
function highlightOf(selection) {
  if (!selection || !model.hosts[selection.host]?.vxlans.has(selection.id)) return null;
  return model.overlayMembers(selection.id);
}

function updateHighlight() {
  const lit = highlightOf(selected);
  if (!lit && !filters.highlight) return;
  filters.highlight = lit;
  applyFilters(cy, model, cy.elements());
}

function renderDetails() {
  const panel = $('#details');
  if (!selected) {
    panel.hidden = true;
    return;
  }
  const h = model.hosts[selected.host];
  const node = cy.getElementById(selected.id);
  const type = node.nonempty() ? node.data('type') : selected.type;
  let title = selected.id;
  let body;
  const context = {
    canOperate: Boolean(editConfig?.can_operate && desiredUrl),
    reapply: reapplies,
    canExplain: Boolean(explain),
    canShape: Boolean(editConfig?.can_operate),
    shapingNote: shapingNotes.get(selected.id),
  };
  const traffic = trafficLayer.details(selected.id, selected.host);
  if (traffic) {
    ({ title, body } = traffic);
  } else if (type === 'link' && h?.links.has(selected.id)) {
    const link = h.links.get(selected.id);
    title = link.name;
    body = linkDetails(model, h, selected.id, link, context);
  } else if (type === 'namespace' && h && node.nonempty()) {
    title = node.data('netns');
    body = namespaceDetails(h, title, context);
  } else if (type === 'host' && h) {
    title = h.name;
    body = hostDetails(h, context);
  } else if (type === 'service' && h?.services.has(selected.id)) {
    const service = h.services.get(selected.id);
    title = `service ${service.name}`;
    body = [
      el('p', { class: 'panel-sub' }, `network ${service.network} · ${service.vip ? `VIP ${service.vip}` : 'no service address'} · host ${h.name}`),
      el(
        'ul',
        { class: 'plain' },
        ...[...service.instances.values()].map((i) =>
          el('li', {}, el('span', { class: `health health-${i.status}` }, i.status), ` ${i.instance} · ${i.address}:${i.port} · ${i.output}`),
        ),
      ),
      el('p', {}, el('a', { href: `/services/#${encodeURIComponent(service.name)}` }, 'Open in the service catalog')),
    ];
  } else if (type === 'vtep' && node.nonempty()) {
    title = `VTEP ${node.data('address')}`;
    body = [
      el('p', { class: 'panel-sub' }, `remote VTEP · host ${h?.name ?? selected.host}`),
      el('p', {}, `No VXLAN device of a known host is bound to ${node.data('address')}: the FDB entries pointing here send frames nowhere Switchboard knows.`),
    ];
  } else {
    body = [el('p', { class: 'muted' }, 'This object no longer exists.')];
  }
  $('#details-title').textContent = title;
  $('#details-body').replaceChildren(...body.filter(Boolean));
  panel.hidden = false;
}

/** Show one element: open its group if it is folded, select it, bring it in view, open the panel. */
function selectElement(id, host) {
  const h = model.hosts[host];
  const node = cy.getElementById(id);
  if (node.empty() && h) {
    const group = h.representative(id);
    if (group !== id) {
      expandGroup(h, groupBridge(group), { fit: false }).then(() => selectElement(id, host));
      return;
    }
  }
  selected = { id, host, type: node.nonempty() ? node.data('type') : null };
  updateHighlight();
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
  const shift = (low, high, size) => {
    const room = Math.min(margin, Math.max(0, (size - (high - low)) / 2));
    if (high - low > size - 2 * room) {
      return high < 0 || low > size ? size / 2 - (low + high) / 2 : 0; // bigger than the view: only if out of sight
    }
    if (low < room) return room - low;
    if (high > size - room) return size - room - high;
    return 0;
  };
  const dx = shift(box.x1, box.x2, cy.width());
  const dy = shift(box.y1, box.y2, cy.height());
  if (dx || dy) cy.panBy({ x: dx, y: dy });
}

function closeDetails() {
  selected = null;
  updateHighlight();
  cy.elements(':selected').unselect();
  renderDetails();
  tableView.refresh();
}

/** Open the endpoints folded on a bridge: they are placed around it, and the view shows them. */
function expandGroup(h, bridgeId, { fit = true } = {}) {
  const members = [...(h.groups.get(ids.group(bridgeId)) ?? [])];
  model.setExpanded(h, bridgeId, true);
  return scheduleFlush().then(() => {
    if (!fit) return;
    const opened = cy.collection(members.map((netns) => cy.getElementById(ids.ns(h.name, netns))));
    cy.animate({ fit: { eles: opened.union(cy.getElementById(bridgeId)), padding: 60 }, duration: 300 });
  });
}

function collapseGroup(h, bridgeId) {
  model.setExpanded(h, bridgeId, false);
  return scheduleFlush();
}

/** Enter in the search box: open the groups holding matches (up to a limit), then zoom to them. */
async function zoomToMatches() {
  const groups = cy.nodes('.group.match');
  const members = groups.reduce((n, g) => n + g.data('count'), 0);
  if (groups.nonempty() && members <= SEARCH_OPENS_AT_MOST) {
    groups.forEach((g) => model.setExpanded(model.hosts[g.data('host')], g.data('bridge'), true));
    await scheduleFlush();
    applyFilters(cy, model, cy.elements());
  }
  const hits = cy.nodes('.match');
  if (hits.nonempty()) cy.animate({ fit: { eles: hits, padding: 80 }, duration: 300 });
}

// ---------------------------------------------------------------------------------------------
// Export

function stamp() {
  return new Date().toISOString().replace(/[:]/g, '').replace(/\..*/, '');
}

/** The state per host as this page holds it (what the JSON export writes). */
function exportState() {
  return {
    exported_at: new Date().toISOString(),
    hosts: Object.fromEntries(
      Object.values(model.hosts).map((h) => [
        h.name,
        { online: h.online, stale: h.stale, seq: h.seq, last_seen: h.lastSeen, agent_version: h.agentVersion, state: h.state },
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
// Tables beside the graph (static/js/tables.js), on tabs: Graph | Endpoints | Networks | ...

TABLES.traffic = TRAFFIC_TABLE; // tables.js draws every table of TABLES: the Traffic tab's joins them
const tableView = createTableView({
  panel: $('#tables'),
  context: () => ({
    hosts: model.hosts,
    filters,
    domain: filters.network ? model.networkDomain(filters.network) : null,
    selectedId: selected?.id ?? null,
  }),
  // A row shows its element on the graph, selected, with its details.
  onSelect: (row) => {
    showView('graph');
    if (row.kind === 'traffic') trafficLayer.setOn(true); // its edge is drawn only with the layer
    selectElement(row.id, row.host);
  },
  download,
});

// "Why can't A reach B" (operators only: viewers get neither the panel nor its actions).
const explain = $('#explain')
  ? createExplain({
      panel: $('#explain'),
      openButton: $('#btn-explain'),
      cy,
      model,
      hosts: () => knownHosts,
      select: (id, host) => {
        showView('graph');
        selectElement(id, host);
      },
    })
  : null;

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
    renderTrafficEmpty();
    cy.resize();
    return;
  }
  const bar = $('.graph-bar');
  $('#tables').style.top = `${bar.offsetTop + bar.offsetHeight}px`;
  tableView.show(view);
  renderTrafficEmpty();
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
// Connection status

let socketStatus = 'connecting';

function setStatus(status, delay = 0, failures = 0) {
  socketStatus = status;
  document.body.dataset.wsStatus = status === 'open' ? 'open' : 'closed';
  const pill = $('#conn-status');
  if (status === 'open') renderConnectedStatus();
  else if (status === 'ended') {
    pill.className = 'status status-closed';
    pill.textContent = 'Signed out';
    pill.title = 'The server ended this session: reload the page';
  } else if (status === 'connecting') {
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
  const reported = Object.values(model.hosts).sort((a, b) => byNaturalOrder(a.name, b.name));
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
    expandGroup(model.hosts[host], bridge);
    return;
  }
  selectElement(node.id(), host);
});
cy.on('tap', 'edge.traffic', (event) => selectElement(event.target.id(), event.target.data('host')));
cy.on('tap', (event) => {
  if (event.target === cy) closeDetails();
});
// Where the user drops a node (or a box, with everything in it) is where it stays.
cy.on('dragfree', 'node', (event) => {
  const moved = event.target.isParent() ? event.target.descendants().filter((n) => n.isChildless()) : event.target;
  moved.forEach((node) => savedLayout.set(node.id(), node.position()));
});
window.addEventListener('pagehide', () => savedLayout.flush({ keepalive: true }));
createGraphMenu({
  cy,
  model,
  config: editConfig,
  desiredUrl,
  menu: $('#graph-menu'),
  notice: $('#edit-notice'),
  extraEntries: explain ? (node) => explain.menuEntries(node.data()) : null,
});

$('#details').addEventListener('click', (event) => {
  const button = event.target.closest('button');
  if (!button || !selected) return;
  const h = model.hosts[selected.host];
  if (button.dataset.reapply) reapply(button.dataset.topology, button.dataset.reapply);
  else if (button.dataset.select) selectElement(button.dataset.select, selected.host);
  else if (button.dataset.expand) expandGroup(h, button.dataset.expand);
  else if (button.dataset.collapse) collapseGroup(h, button.dataset.collapse);
  else if (button.dataset.explainFrom) explain?.from(selected.host, button.dataset.explainFrom);
  else if (button.dataset.explainTo) explain?.to(selected.host, button.dataset.explainTo);
  else if (button.dataset.shape || button.dataset.unshape) shapingChange(h, selected.id, Boolean(button.dataset.shape));
});

// How the last shaping change of each link went (shown in its details until the page reloads).
const shapingNotes = new Map();

function shapingChange(h, id, shape) {
  const link = h?.links.get(id);
  if (!link) return;
  const report = (text, ok) => {
    shapingNotes.set(id, { text, ok });
    if (selected?.id === id) renderDetails();
  };
  const where = { host: h.name, netns: link.netns, link: link.name, report };
  if (shape) shapeLink({ ...where, shaping: link.shaping });
  else unshapeLink(where);
}
$('#details-close').addEventListener('click', closeDetails);
$('#filter-clear').addEventListener('click', () => {
  clearFilters();
  filtersChanged();
});

const search = $('#search');
search.addEventListener('input', () => setQuery(search.value));
const linkedSearch = new URLSearchParams(location.search).get('search'); // e.g. from the Services page
if (linkedSearch) {
  search.value = linkedSearch;
  setQuery(linkedSearch);
}
search.addEventListener('keydown', (event) => {
  if (event.key === 'Enter') zoomToMatches();
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
$('#group-endpoints').addEventListener('change', (event) => setGrouping(event.target.checked));
$('#btn-relayout').addEventListener('click', relayout);
// Filtered nodes carry the class itself (ele.visible() lags class changes until the next render).
$('#btn-fit').addEventListener('click', () => fitReadable(undefined, true));
for (const button of document.querySelectorAll('[data-export]')) {
  button.addEventListener('click', () => exporters[button.dataset.export]());
}

// The test hook (tests/browser/): `feed` applies one frame as if it came from the socket and
// resolves once the graph shows it; `whenIdle` resolves once every frame received is drawn and
// placed; `layoutSaved` once the positions are sent to the server.
const switchboard = {
  cy,
  model,
  state: model.hosts,
  ready,
  lastDeltaAppliedAt: null,
  feed: handleFrame,
  whenIdle: () => (flushing.scheduled ? scheduleFlush() : lastFlushDone),
  layoutSaved: () => lastFlushDone.then(() => savedLayout.flush()),
  setGrouping,
  relayout,
  exportState,
  tables: tableView,
  showView,
  overlays: overlayWatch,
  explain,
  traffic: trafficLayer,
  get largeMode() {
    return largeGraph;
  },
};
window.switchboard = switchboard;

$('#group-endpoints').checked = model.grouping;
$('#fold-above').textContent = String(FOLD_ABOVE);
renderKindFilters();
renderLegend();
renderHostFilters(model, knownHosts);
renderSummary();
renderEmptyState();
connection = new Connection(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${root.dataset.wsPath}`, {
  onFrame: handleFrame,
  onStatus: setStatus,
});
connection.open();
refreshDesired();
