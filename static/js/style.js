// How the graph looks: colours and line styles (one source for the stylesheet and the legend), the
// Cytoscape stylesheet, and the legend drawn from the same looks.

import { $, el, storedFlag, storeFlag } from './dom.js';

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
  desiredProblem: '#fb7185', // a desired topology failed or drifted
  desiredBusy: '#fbbf24', // a desired topology's operation is queued or running, or its edits are not applied yet
  tunnel: '#7c3aed', // a VXLAN tunnel between hosts (an FDB entry's dst is the other's VTEP)
  tunnelUnknown: '#db2777', // a tunnel to a VTEP no known host has, and that VTEP
  findings: '#dc2626', // the overlay check's findings badge
  explainPath: '#0891b2', // the path an explanation walked (explain.js)
  explainDrop: '#dc2626', // where it stopped short of the destination
  traffic: '#ea580c', // a "talks to" edge of the Traffic layer (traffic.js), and the outside node
  shaped: '#a16207', // a link with a rate limit or impairment (its root qdisc), and its veth edge
};
const DOWN_DASH = [6, 4];
const TUNNEL_DASH = [10, 4];
const TRAFFIC_DASH = [3, 3];
// How far a tunnel arcs (px, to the left of source -> target: above, hosts standing left to right)
// between hosts 1, 2, 3, 4+ apart (graph.js tunnelEdge: arc-N).
const TUNNEL_ARCS = [-90, -160, -230, -300];
const LABEL_WIDTH = 140; // where labels wrap
const VXLAN_LABEL_WIDTH = 180; // "VNI 5000 · 198.18.254.11" (171 px in bold) on one line

// Node sizes [width, height] by look, for the stylesheet and for the layout (which reads them from
// here, not from Cytoscape, so it can run before anything is drawn).
const SIZE = {
  node: [22, 22],
  bridge: [48, 24],
  hub: [72, 28],
  vxlan: [32, 32],
  lo: [12, 12],
  group: [116, 44],
  emptyHost: [160, 44],
  vtep: [24, 24],
  service: [34, 34],
};

/** The size of a leaf node from its data and classes (see SIZE). */
export function nodeSize(node) {
  if (node.data('type') === 'group') return SIZE.group;
  if (node.data('type') === 'host') return SIZE.emptyHost;
  if (node.data('type') === 'vtep') return SIZE.vtep;
  if (node.data('type') === 'service') return SIZE.service;
  if (node.hasClass('hub')) return SIZE.hub;
  return SIZE[node.data('kind')] ?? SIZE.node;
}

const size = (key) => ({ width: SIZE[key][0], height: SIZE[key][1] });

/** Where a leaf's label wraps, when not at LABEL_WIDTH (the layout sizes it so: layout.js nodeExtent). */
export function labelWidth(node) {
  return node.data('type') === 'link' && node.data('kind') === 'vxlan' ? VXLAN_LABEL_WIDTH : undefined;
}

/** The overlay findings badge drawn on a VXLAN device: a red disc with the count (an SVG data URI). */
export function badgeImage(count) {
  const text = count > 99 ? '99+' : String(count);
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20" viewBox="0 0 20 20">` +
    `<circle cx="10" cy="10" r="9" fill="${LOOK.findings}" stroke="#ffffff" stroke-width="1.5"/>` +
    `<text x="10" y="14" text-anchor="middle" font-family="sans-serif" font-size="${text.length > 2 ? 8 : 11}" font-weight="bold" fill="#ffffff">${text}</text></svg>`;
  return `data:image/svg+xml,${encodeURIComponent(svg)}`;
}


export function stylesheet(large, detailed) {
  const font = 'system-ui, -apple-system, "Segoe UI", sans-serif';
  return [
    {
      selector: 'node',
      style: {
        label: 'data(label)',
        'font-family': font,
        'font-size': 12,
        color: '#1e293b',
        'text-valign': 'bottom',
        'text-margin-y': 3,
        'text-wrap': 'wrap',
        'text-max-width': LABEL_WIDTH,
        ...size('node'),
        'background-color': '#64748b',
        'border-width': 1,
        'border-color': '#ffffff',
        // Level of detail: a label is drawn only where it is at least 10 px on screen, so zoomed out
        // the graph shows boxes and lines instead of overlapping unreadable text.
        'min-zoomed-font-size': 10,
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
      style: { ...size('emptyHost'), 'text-valign': 'center', 'font-size': 13, 'border-width': 2 },
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
      style: { shape: 'round-rectangle', ...size('bridge'), 'background-color': LOOK.bridge },
    },
    {
      // A network's hub: a bridge of the host namespace, drawn on its own with its endpoints around it.
      selector: 'node.k-bridge.hub',
      style: { ...size('hub'), 'font-weight': 'bold' },
    },
    { selector: 'node.k-veth', style: { 'background-color': LOOK.veth } },
    {
      selector: 'node.k-vxlan',
      // Not 'diamond': Cytoscape 3.34 misses clicks on a diamond's vertical centre line.
      style: { shape: 'round-diamond', ...size('vxlan'), 'background-color': LOOK.vxlan, 'font-weight': 'bold', 'text-max-width': VXLAN_LABEL_WIDTH },
    },
    {
      selector: 'node.k-lo',
      style: { ...size('lo'), 'background-color': LOOK.lo, color: '#64748b' },
    },
    { selector: 'node.k-other', style: { shape: 'hexagon', 'background-color': LOOK.other } },
    {
      // A remote VTEP that no known host's VXLAN device is bound to: a tunnel points nowhere.
      selector: 'node.vtep',
      style: {
        shape: 'round-rectangle',
        ...size('vtep'),
        'background-color': '#ffffff',
        'border-width': 2,
        'border-style': 'dashed',
        'border-color': LOOK.tunnelUnknown,
        color: LOOK.tunnelUnknown,
      },
    },
    {
      // A catalog service beside its network's bridge, coloured by its instances' health; dotted
      // edges to the namespaces that back it, each coloured by that instance's health.
      selector: 'node.service',
      style: { shape: 'diamond', ...size('service'), 'background-color': '#ffffff', 'border-width': 3 },
    },
    { selector: 'node.svc-passing', style: { 'border-color': '#10b981', color: '#047857' } },
    { selector: 'node.svc-warning', style: { 'border-color': '#f59e0b', color: '#b45309' } },
    { selector: 'node.svc-critical', style: { 'border-color': '#ef4444', color: '#b91c1c' } },
    { selector: 'node.svc-unknown', style: { 'border-color': '#94a3b8', color: '#64748b' } },
    { selector: 'edge.service-edge', style: { width: 1.5, 'line-style': 'dotted', 'curve-style': 'bezier' } },
    { selector: 'edge.service-edge.svc-passing', style: { 'line-color': '#10b981' } },
    { selector: 'edge.service-edge.svc-warning', style: { 'line-color': '#f59e0b' } },
    { selector: 'edge.service-edge.svc-critical', style: { 'line-color': '#ef4444' } },
    { selector: 'edge.service-edge.svc-unknown', style: { 'line-color': '#94a3b8' } },
    {
      selector: 'node.group',
      style: {
        shape: 'round-rectangle',
        ...size('group'),
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
      // The overlay check found something on this host's device: a red count at its top right.
      selector: 'node.overlay-findings',
      style: {
        'background-image': 'data(badge)',
        'background-width': 20,
        'background-height': 20,
        'background-position-x': '100%',
        'background-position-y': '0%',
        'background-offset-x': 8,
        'background-offset-y': -8,
        'background-clip': 'none',
        'background-image-containment': 'over',
        'bounds-expansion': 10,
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
      // A veth with a shaped end: another colour, and the shaping written on it.
      selector: 'edge.veth.shaped',
      style: {
        'line-color': LOOK.shaped,
        width: 5,
        label: 'data(label)',
        'font-size': 9,
        color: LOOK.shaped,
        'text-wrap': 'wrap',
        'text-background-color': '#ffffff',
        'text-background-opacity': 0.85,
        'text-background-padding': 2,
      },
    },
    { selector: 'node.link.shaped', style: { 'border-width': 3, 'border-color': LOOK.shaped, 'border-style': 'double' } },
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
    {
      // A VXLAN tunnel between the devices of two hosts, labelled with its VNI; arrowed towards the
      // end the FDB entries point at when only one side has entries for the other.
      selector: 'edge.tunnel',
      style: {
        width: 2.5,
        'line-color': LOOK.tunnel,
        'line-style': 'dashed',
        'line-dash-pattern': TUNNEL_DASH,
        label: 'data(label)',
        'font-family': font,
        'font-size': 11,
        color: LOOK.tunnel,
        'text-background-color': '#ffffff',
        'text-background-opacity': 0.85,
        'text-background-padding': 2,
        'min-zoomed-font-size': 8,
        'source-arrow-color': LOOK.tunnel,
        'target-arrow-color': LOOK.tunnel,
        ...(large ? {} : { 'curve-style': 'unbundled-bezier', 'control-point-distances': 0, 'control-point-weights': 0.5 }),
      },
    },
    ...(large ? [] : TUNNEL_ARCS.map((d, i) => ({ selector: `edge.tunnel.arc-${i + 1}`, style: { 'control-point-distances': d } }))),
    { selector: 'edge.tunnel-unknown', style: { 'line-color': LOOK.tunnelUnknown, color: LOOK.tunnelUnknown, 'target-arrow-color': LOOK.tunnelUnknown } },
    { selector: 'edge.oneway-forward, edge.tunnel-unknown', style: large ? {} : { 'target-arrow-shape': 'triangle' } },
    { selector: 'edge.oneway-backward', style: large ? {} : { 'source-arrow-shape': 'triangle' } },
    // Elements of a desired topology (the Networks page) whose last apply failed or that drifted, and
    // of one with an operation queued or running: a halo, so borders keep saying up/down/selected.
    {
      selector: '.desired-problem',
      style: { 'underlay-color': LOOK.desiredProblem, 'underlay-opacity': 0.35, 'underlay-padding': 6, 'underlay-shape': 'round-rectangle' },
    },
    {
      selector: '.desired-busy',
      style: { 'underlay-color': LOOK.desiredBusy, 'underlay-opacity': 0.35, 'underlay-padding': 6, 'underlay-shape': 'round-rectangle' },
    },
    // A host bridge Docker's firewall drops frames on (model.js dockerDrops): a red dashed border.
    { selector: 'node.docker-drops', style: { 'border-width': 3, 'border-style': 'dashed', 'border-color': LOOK.desiredProblem } },
    // The path an explanation walked (explain.js), and the element where it stopped.
    { selector: 'node.explain-hop', style: { 'border-width': 4, 'border-color': LOOK.explainPath, 'border-style': 'solid' } },
    {
      selector: 'edge.explain-hop',
      style: { width: 5, 'line-color': LOOK.explainPath, 'target-arrow-color': LOOK.explainPath, 'line-style': 'solid', 'z-index': 20 },
    },
    {
      selector: 'node.explain-drop',
      style: {
        'border-width': 5,
        'border-color': LOOK.explainDrop,
        'border-style': 'solid',
        'underlay-color': LOOK.explainDrop,
        'underlay-opacity': 0.3,
        'underlay-padding': 8,
        'underlay-shape': 'round-rectangle',
      },
    },
    // The Traffic layer (traffic.js): client -> server, dashed and arrowed, wider the more bytes
    // (data(width): a log scale), labelled "tcp/80"; servers outside the host meet at one node.
    {
      selector: 'edge.traffic',
      style: {
        width: 'data(width)',
        'line-color': LOOK.traffic,
        'line-style': 'dashed',
        'line-dash-pattern': TRAFFIC_DASH,
        'curve-style': 'bezier',
        'target-arrow-shape': 'triangle',
        'target-arrow-color': LOOK.traffic,
        'arrow-scale': 0.9,
        label: 'data(label)',
        'font-family': font,
        'font-size': 11,
        color: LOOK.traffic,
        'text-background-color': '#ffffff',
        'text-background-opacity': 0.85,
        'text-background-padding': 2,
        'min-zoomed-font-size': 8,
        'z-index': 15,
      },
    },
    { selector: 'edge.traffic:selected', style: { 'line-color': LOOK.selected, 'target-arrow-color': LOOK.selected, 'line-style': 'solid' } },
    {
      selector: 'node.outside',
      style: {
        shape: 'ellipse',
        width: 30,
        height: 30,
        'background-color': '#ffffff',
        'border-width': 2,
        'border-style': 'dashed',
        'border-color': LOOK.traffic,
        color: LOOK.traffic,
      },
    },
    { selector: '.dimmed', style: { opacity: 0.15 } },
    // Selecting a VXLAN device lights the overlay it is part of: its peers and their endpoints.
    { selector: 'node.lit', style: { 'border-width': 3, 'border-color': LOOK.tunnel, 'border-style': 'solid' } },
    { selector: 'edge.tunnel.lit', style: { width: 4 } },
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
    ['Unknown VTEP', { shape: 'box', fill: '#ffffff', border: LOOK.tunnelUnknown, width: 2, dash: true }],
    ['Outside the host (Traffic layer)', { shape: 'circle', fill: '#ffffff', border: LOOK.traffic, width: 2, dash: true }],
    ['Shaped (rate limit or impairment)', { shape: 'circle', fill: LOOK.veth, border: LOOK.shaped, width: 3 }],
    ['Overlay findings', { shape: 'badge', fill: LOOK.findings }],
    ['Grouped endpoints', { shape: 'bar', fill: LOOK.group.fill, border: LOOK.group.border, width: 2 }],
    ['Down', { shape: 'circle', fill: LOOK.down.fill, border: LOOK.down.line, width: 2, dash: true }],
    ['Search match', { shape: 'circle', fill: '#ffffff', border: LOOK.match, width: 3 }],
    ['Selected', { shape: 'circle', fill: '#ffffff', border: LOOK.selected, width: 3 }],
    ['Topology failed or drifted', { shape: 'halo', fill: LOOK.desiredProblem }],
    ['Topology being applied, or edited and not applied yet', { shape: 'halo', fill: LOOK.desiredBusy }],
    ['On the explained path', { shape: 'circle', fill: '#ffffff', border: LOOK.explainPath, width: 3 }],
    ['Where the explained path stops', { shape: 'halo', fill: LOOK.explainDrop }],
  ]],
  ['Lines', [
    ['veth pair', { shape: 'line', border: LOOK.vethEdge, width: 3 }],
    ['veth pair with a shaped end (its shaping written on it)', { shape: 'line', border: LOOK.shaped, width: 4 }],
    ['Bridge port', { shape: 'arrow', border: LOOK.portEdge, width: 2 }],
    ['Grouped endpoints', { shape: 'line', border: LOOK.groupEdge, width: 5, dash: true }],
    ['Link down', { shape: 'line', border: LOOK.down.line, width: 2, dash: true }],
    ['VXLAN tunnel', { shape: 'line', border: LOOK.tunnel, width: 2.5, dash: TUNNEL_DASH }],
    ['Tunnel to an unknown VTEP', { shape: 'line', border: LOOK.tunnelUnknown, width: 2.5, dash: TUNNEL_DASH }],
    ['Explained path', { shape: 'line', border: LOOK.explainPath, width: 4 }],
    ['Talks to (Traffic layer; wider: more bytes)', { shape: 'arrow', border: LOOK.traffic, width: 2, dash: TRAFFIC_DASH }],
  ]],
];

function svgEl(tag, attrs) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  return node;
}

/** A 28×16 swatch drawing one legend entry. */
function legendSwatch({ shape, fill = 'none', border = 'none', width = 1, dash = false }) {
  const pattern = dash === true ? DOWN_DASH : dash;
  const paint = { fill, stroke: border, 'stroke-width': width, ...(pattern ? { 'stroke-dasharray': pattern.join(' ') } : {}) };
  const svg = svgEl('svg', { width: 28, height: 16, viewBox: '0 0 28 16', 'aria-hidden': 'true', class: 'legend-swatch' });
  const shapes = {
    box: () => svgEl('rect', { x: 2, y: 2, width: 24, height: 12, rx: 3, ...paint }),
    bar: () => svgEl('rect', { x: 4, y: 4, width: 20, height: 9, rx: 2, ...paint }),
    circle: () => svgEl('circle', { cx: 14, cy: 8, r: 6, ...paint }),
    dot: () => svgEl('circle', { cx: 14, cy: 8, r: 3.5, ...paint }),
    halo: () => [
      svgEl('rect', { x: 2, y: 1, width: 24, height: 14, rx: 5, fill, 'fill-opacity': 0.45 }),
      svgEl('circle', { cx: 14, cy: 8, r: 4.5, fill: LOOK.veth }),
    ],
    diamond: () => svgEl('polygon', { points: '14,1 21,8 14,15 7,8', ...paint }),
    badge: () => {
      const count = svgEl('text', { x: 14, y: 11.5, 'text-anchor': 'middle', 'font-size': 10, 'font-weight': 'bold', fill: '#ffffff' });
      count.textContent = '2';
      return [svgEl('circle', { cx: 14, cy: 8, r: 7, fill }), count];
    },
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

const LEGEND_OPEN_KEY = 'switchboard.topology.legendOpen';

export function renderLegend() {
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
