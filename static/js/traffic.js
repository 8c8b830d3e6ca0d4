// Traffic edges: "talks to" edges between namespaces, from the `traffic` state kind each host's agent
// reads from its namespaces' conntrack tables (docs/agent-protocol.md, "State"). One object per
// client namespace, server, protocol and port: {client, server, server_address, protocol, port,
// flows, packets, bytes, seen_in}; `server` "" is an address outside the host.
//
// Pure: what the graph draws for them (edge and "outside" node definitions, the width scale, the
// labels), how that differs from what is drawn, and the rows of the Traffic table; no DOM and no
// Cytoscape, so `node --test static/js/tests/` checks it. traffic-view.js draws it.

import { ids } from './model.js';

export const TRAFFIC_KIND = 'traffic';

/** Graph ids: a traffic edge is one per host and agent key; one "outside" node per host. */
export const trafficIds = {
  edge: (host, key) => `traffic:${host}|${key}`,
  outside: (host) => `${host}|outside`,
};

// Edge width (px) by bytes, on a log scale: WIDTH_MIN for an empty flow, WIDTH_MAX from BYTES_FULL on.
export const WIDTH_MIN = 1.5;
export const WIDTH_MAX = 9;
const BYTES_FULL = 1e9;

/** The width of an edge that carried `bytes`: log10 scale, so 1 kB and 1 GB both read. */
export function edgeWidth(bytes) {
  const b = Number.isFinite(bytes) && bytes > 0 ? bytes : 0;
  const share = Math.min(1, Math.log10(1 + b) / Math.log10(1 + BYTES_FULL));
  return Math.round((WIDTH_MIN + (WIDTH_MAX - WIDTH_MIN) * share) * 10) / 10;
}

/** "tcp/80", or the protocol alone when it has no port ("icmp"). */
export function trafficLabel(t) {
  return t.port === null || t.port === undefined ? t.protocol : `${t.protocol}/${t.port}`;
}

/** Bytes for people: "0 B", "950 B", "1.2 kB", "3.4 MB" (powers of 1000). */
export function formatBytes(bytes) {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let value = Math.max(0, Number(bytes) || 0);
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** Who the server is, for people: its namespace, else "outside 198.51.100.7". */
export function serverText(t) {
  return t.server || `outside ${t.server_address}`;
}

/**
 * The node a namespace of host `h` (a HostModel) is drawn as: its box, or the group it is folded
 * into; "" stands for outside the host. Null when nothing of it is on the graph (`present(id)`).
 */
export function endNode(h, netns, present) {
  const id = netns === '' ? trafficIds.outside(h.name) : h.folded?.get(netns)?.group ?? ids.ns(h.name, netns);
  return netns === '' || present(id) ? id : null;
}

/**
 * What the Traffic layer draws for `hosts` (HostModels, each with state.traffic): one edge per
 * traffic object whose ends are drawn (`present(id)`: the client's namespace box or group, and the
 * server's, or the host's "outside" node), and one "outside" node per host talking outside.
 * Returns {nodes, edges}: Cytoscape element definitions ({data, classes}).
 */
export function trafficElements(hosts, present) {
  const nodes = [];
  const edges = [];
  for (const h of hosts) {
    let outside = false;
    for (const [key, t] of Object.entries(h.state?.[TRAFFIC_KIND] ?? {})) {
      const source = endNode(h, t.client, present);
      const target = endNode(h, t.server, present);
      if (!source || !target) continue;
      if (t.server === '') outside = true;
      const label = trafficLabel(t);
      edges.push({
        data: {
          id: trafficIds.edge(h.name, key), source, target, type: 'traffic', kind: 'traffic', host: h.name, key, label,
          width: edgeWidth(t.bytes), flows: t.flows, packets: t.packets, bytes: t.bytes,
          title: `${t.client} → ${serverText(t)} ${label}: ${t.flows} flow${t.flows === 1 ? '' : 's'}, ${t.packets} packets, ${formatBytes(t.bytes)}`,
        },
        classes: t.server === '' ? 'traffic traffic-outside' : 'traffic',
      });
    }
    if (outside) {
      const id = trafficIds.outside(h.name);
      nodes.push({ data: { id, type: 'outside', host: h.name, label: 'outside the host', brief: 'outside' }, classes: 'outside' });
    }
  }
  return { nodes, edges };
}

/**
 * How to bring what is drawn (`drawn`: Map id -> data of the traffic elements on the graph) to
 * `wanted` (trafficElements' nodes and edges): {add: definitions, update: [{id, data}] with only
 * the data that changed, remove: ids}. An edge whose ends changed is removed and added again
 * (Cytoscape cannot move an edge's ends).
 */
export function trafficDiff(drawn, wanted) {
  const add = [];
  const update = [];
  const keep = new Set();
  for (const spec of [...wanted.nodes, ...wanted.edges]) {
    const { id } = spec.data;
    keep.add(id);
    const held = drawn.get(id);
    if (!held || held.source !== spec.data.source || held.target !== spec.data.target) {
      add.push(spec);
      continue;
    }
    const changed = Object.fromEntries(Object.entries(spec.data).filter(([k, v]) => held[k] !== v));
    if (Object.keys(changed).length) update.push({ id, data: changed, classes: spec.classes });
  }
  const moved = new Set(add.map((spec) => spec.data.id).filter((id) => drawn.has(id)));
  const remove = [...drawn.keys()].filter((id) => !keep.has(id) || moved.has(id));
  return { add, update, remove };
}

/** One row per traffic object of every host, for the Traffic table (tables.js row shape). */
export function trafficRows(hostList) {
  const rows = [];
  for (const h of hostList) {
    for (const [key, t] of Object.entries(h.state?.[TRAFFIC_KIND] ?? {})) {
      const values = {
        host: h.name,
        client: t.client,
        server: serverText(t),
        address: t.server_address,
        service: trafficLabel(t),
        flows: t.flows,
        packets: t.packets,
        bytes: t.bytes,
      };
      const text = [...Object.values(values), ...(t.seen_in ?? [])].join(' ').toLowerCase();
      rows.push({ id: trafficIds.edge(h.name, key), host: h.name, kind: 'traffic', values, text });
    }
  }
  return rows;
}

/** The Traffic table as tables.js draws its tables: rows from the hosts, and its columns. */
export const TRAFFIC_TABLE = {
  title: 'Traffic (live conversations)',
  rows: trafficRows,
  columns: [
    ['host', 'Host'], ['client', 'Client'], ['server', 'Server'], ['address', 'Server address'],
    ['service', 'Protocol/port'], ['flows', 'Flows'], ['packets', 'Packets'], ['bytes', 'Bytes'],
  ],
};

/** How many traffic objects the hosts hold (the table's empty state shows when there are none). */
export function trafficCount(hostList) {
  return hostList.reduce((n, h) => n + Object.keys(h.state?.[TRAFFIC_KIND] ?? {}).length, 0);
}

/** The details panel's facts of one traffic object: [label, text] pairs. */
export function trafficFacts(t) {
  return [
    ['Client', t.client],
    ['Server', t.server ? `${t.server} (${t.server_address})` : `outside the host: ${t.server_address}`],
    ['Protocol', trafficLabel(t)],
    ['Live flows', String(t.flows)],
    ['Packets', t.packets.toLocaleString('en')],
    ['Bytes', `${formatBytes(t.bytes)} (${t.bytes.toLocaleString('en')})`],
    ['Seen in', (t.seen_in ?? []).join(', ')],
  ];
}
