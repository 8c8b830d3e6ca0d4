// Tables beside the graph: endpoints (addresses), networks (bridges), routes and interfaces of every
// host.
//
// The row builders, filters, sorting and CSV are pure functions of the hosts' state (netcore's
// JSON, as the topology page holds it), so `node --test static/js/tests/` checks them without a
// browser. `createTableView` draws them into the page: a sortable table, a filter box, CSV export,
// and a row click handed back to the page (which selects the element on the graph); the row of the
// element selected on the graph is marked and scrolled into view.

import { aliasNames, linkDown, linkKind, ownerNames, parseOwnerAlias } from './links.js';
import { ids } from './model.js';

const { link: linkId, ns: nsId } = ids; // graph node ids, as the graph builds them

function indexLinks(state) {
  const byIndex = new Map();
  const byName = new Map();
  for (const link of Object.values(state.links ?? {})) {
    byIndex.set(`${link.netns}|${link.index}`, link);
    byName.set(`${link.netns}|${link.name}`, link);
  }
  return { byIndex, byName };
}

/**
 * The nodes living in a namespace, from the owner alias on its `lo`: the node it was made for and
 * the container: nodes sharing it (netcore.names.owner_alias), e.g. ['web1', 'side'].
 */
function namespaceNodes(byName, netns) {
  const tag = parseOwnerAlias(byName.get(`${netns}|lo`)?.alias);
  return tag?.role === 'node' ? [tag.node, ...(tag.shared ?? [])].filter(Boolean) : [];
}

/** A veth's other end: its name and namespace, e.g. "eth0 (demo-web1)". */
function peerText(link, peerLink) {
  if (!link.peer) return '';
  return `${link.peer.name ?? peerLink?.name ?? `#${link.peer.index}`} (${link.peer.netns})`;
}

/** Addresses in the order a person reads them: IPv4 first, then numerically. */
function byFamilyAndAddress(a, b) {
  return a.family - b.family || a.address.localeCompare(b.address, undefined, { numeric: true });
}

/** The network of an address, e.g. 198.18.1.2/24 -> 198.18.1.0/24 (IPv4 and IPv6). */
export function subnetOf(address, prefixlen) {
  if (address.includes(':')) {
    const [head, tail = ''] = address.split('::');
    const part = (text) => (text ? text.split(':') : []);
    const left = part(head);
    const right = part(address.includes('::') ? tail : '');
    const groups = address.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
    let value = 0n;
    for (const group of groups) value = (value << 16n) | BigInt(parseInt(group || '0', 16));
    const mask = prefixlen === 0 ? 0n : ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - prefixlen)) - 1n);
    value &= mask;
    const out = [];
    for (let i = 7; i >= 0; i -= 1) out.push(((value >> BigInt(i * 16)) & 0xffffn).toString(16));
    // Shorten the longest run of zero groups (RFC 5952).
    let best = [-1, 0];
    for (let i = 0; i < 8; ) {
      let j = i;
      while (j < 8 && out[j] === '0') j += 1;
      if (j - i > best[1] && j - i > 1) best = [i, j - i];
      i = j === i ? i + 1 : j;
    }
    const text = best[0] < 0
      ? out.join(':')
      : `${out.slice(0, best[0]).join(':')}::${out.slice(best[0] + best[1]).join(':')}`;
    return `${text}/${prefixlen}`;
  }
  const octets = address.split('.').map(Number);
  const value = ((octets[0] << 24) >>> 0) + (octets[1] << 16) + (octets[2] << 8) + octets[3];
  const mask = prefixlen === 0 ? 0 : (0xffffffff << (32 - prefixlen)) >>> 0;
  const net = (value & mask) >>> 0;
  return `${[24, 16, 8, 0].map((shift) => (net >>> shift) & 0xff).join('.')}/${prefixlen}`;
}

function row(id, host, kind, values, extra = []) {
  const text = [...Object.values(values), ...extra]
    .filter((value) => value !== null && value !== undefined && value !== '')
    .join(' ')
    .toLowerCase();
  return { id, host, kind, values, text };
}

/** The bridge a link sits on: its own master, or (a veth end) its peer's master; a bridge is its own. */
function bridgeOf(link, peerLink) {
  if (link.kind === 'bridge') return link.name;
  return link.master ?? peerLink?.master ?? '';
}

/** One row per address: where it lives, on what, and how that interface reaches a bridge. */
export function addressRows(hostList) {
  const rows = [];
  for (const h of hostList) {
    const { byIndex, byName } = indexLinks(h.state);
    const nodesOf = new Map();
    for (const address of Object.values(h.state.addresses ?? {})) {
      if (!nodesOf.has(address.netns)) nodesOf.set(address.netns, namespaceNodes(byName, address.netns).join(', '));
      const link = byIndex.get(`${address.netns}|${address.ifindex}`);
      const peerLink = link?.peer ? byIndex.get(`${link.peer.netns}|${link.peer.index}`) : null;
      const peerName = link?.peer ? link.peer.name ?? peerLink?.name ?? `#${link.peer.index}` : '';
      rows.push(row(
        link ? linkId(h.name, address.netns, address.ifindex) : nsId(h.name, address.netns),
        h.name,
        link ? linkKind(link) : 'other',
        {
          host: h.name,
          namespace: address.netns,
          nodes: nodesOf.get(address.netns),
          interface: link?.name ?? address.ifname ?? `#${address.ifindex}`,
          address: `${address.address}/${address.prefixlen}`,
          mac: link?.mac ?? '',
          state: link ? (linkDown(link) ? 'down' : 'up') : '',
          peer: peerName && link.peer.netns !== address.netns ? `${peerName}${link.peer.netns === 'host' ? '' : ` (${link.peer.netns})`}` : peerName,
          bridge: link ? bridgeOf(link, peerLink) : '',
        },
        [...aliasNames(link?.alias), ...aliasNames(peerLink?.alias)],
      ));
    }
  }
  return rows;
}

/** One row per bridge: its subnets and gateway addresses, its ports and the endpoints behind them. */
export function networkRows(hostList) {
  const rows = [];
  for (const h of hostList) {
    const { byIndex } = indexLinks(h.state);
    const links = Object.values(h.state.links ?? {});
    const addresses = Object.values(h.state.addresses ?? {});
    for (const bridge of links.filter((link) => link.kind === 'bridge')) {
      const own = addresses
        .filter((address) => address.netns === bridge.netns && address.ifindex === bridge.index && address.scope !== 'link')
        .sort(byFamilyAndAddress);
      const ports = links.filter((link) => link.netns === bridge.netns && link.master === bridge.name);
      const endpoints = new Set();
      let down = 0;
      for (const portLink of ports) {
        if (linkDown(portLink)) down += 1;
        const peerLink = portLink.peer ? byIndex.get(`${portLink.peer.netns}|${portLink.peer.index}`) : null;
        if (portLink.peer && portLink.peer.netns !== bridge.netns) endpoints.add(portLink.peer.netns);
        else if (peerLink?.master && peerLink.master !== bridge.name) endpoints.add(`bridge ${peerLink.master}`);
      }
      const state = linkDown(bridge) ? 'down' : down ? `up, ${down} of ${ports.length} ports down` : 'up';
      rows.push(row(
        linkId(h.name, bridge.netns, bridge.index),
        h.name,
        'bridge',
        {
          host: h.name,
          bridge: bridge.name,
          subnet: own.map((a) => subnetOf(a.address, a.prefixlen)).join(', '),
          gateway: own.map((a) => a.address).join(', '),
          ports: ports.length,
          endpoints: endpoints.size,
          state,
        },
        aliasNames(bridge.alias),
      ));
    }
  }
  return rows;
}

/** One row per route, in the namespace that holds it. */
export function routeRows(hostList) {
  const rows = [];
  for (const h of hostList) {
    const { byIndex } = indexLinks(h.state);
    for (const route of Object.values(h.state.routes ?? {})) {
      const devLink = route.oif ? byIndex.get(`${route.netns}|${route.oif}`) : null;
      rows.push(row(
        devLink ? linkId(h.name, route.netns, route.oif) : nsId(h.name, route.netns),
        h.name,
        devLink ? linkKind(devLink) : 'other',
        {
          host: h.name,
          namespace: route.netns,
          destination: route.dst,
          gateway: route.gateway ?? '',
          device: route.dev ?? devLink?.name ?? '',
          protocol: route.protocol ?? '',
          metric: route.metric ?? '',
        },
      ));
    }
  }
  return rows;
}

/** One row per interface of every namespace: what it is, its state, addresses, master, peer and owner. */
export function interfaceRows(hostList) {
  const rows = [];
  for (const h of hostList) {
    const { byIndex } = indexLinks(h.state);
    const addressesOf = new Map();
    for (const address of Object.values(h.state.addresses ?? {})) {
      const key = `${address.netns}|${address.ifindex}`;
      if (!addressesOf.has(key)) addressesOf.set(key, []);
      addressesOf.get(key).push(address);
    }
    for (const link of Object.values(h.state.links ?? {})) {
      const peerLink = link.peer ? byIndex.get(`${link.peer.netns}|${link.peer.index}`) : null;
      const addresses = (addressesOf.get(`${link.netns}|${link.index}`) ?? [])
        .sort(byFamilyAndAddress)
        .map((a) => `${a.address}/${a.prefixlen}`);
      rows.push(row(
        linkId(h.name, link.netns, link.index),
        h.name,
        linkKind(link),
        {
          host: h.name,
          namespace: link.netns,
          name: link.name,
          kind: linkKind(link),
          state: linkDown(link) ? 'down' : 'up',
          operstate: link.state ?? '',
          mtu: link.mtu ?? '',
          mac: link.mac ?? '',
          addresses: addresses.join(', '),
          master: link.master ?? '',
          peer: peerText(link, peerLink),
          owner: ownerNames(link.alias).join(', '),
        },
        aliasNames(peerLink?.alias),
      ));
    }
  }
  return rows;
}

export const TABLES = {
  endpoints: {
    title: 'Endpoints',
    rows: addressRows,
    columns: [
      ['host', 'Host'], ['namespace', 'Namespace'], ['nodes', 'Nodes'], ['interface', 'Interface'],
      ['address', 'Address'], ['mac', 'MAC'], ['state', 'State'], ['peer', 'Host-side veth'], ['bridge', 'Bridge'],
    ],
  },
  networks: {
    title: 'Networks',
    rows: networkRows,
    columns: [
      ['host', 'Host'], ['bridge', 'Bridge'], ['subnet', 'Subnet'], ['gateway', 'Gateway'],
      ['ports', 'Ports'], ['endpoints', 'Endpoints'], ['state', 'State'],
    ],
  },
  routes: {
    title: 'Routes',
    rows: routeRows,
    columns: [
      ['host', 'Host'], ['namespace', 'Namespace'], ['destination', 'Destination'], ['gateway', 'Gateway'],
      ['device', 'Device'], ['protocol', 'Protocol'], ['metric', 'Metric'],
    ],
  },
  interfaces: {
    title: 'Interfaces',
    rows: interfaceRows,
    columns: [
      ['host', 'Host'], ['namespace', 'Namespace'], ['name', 'Name'], ['kind', 'Kind'], ['state', 'State'],
      ['operstate', 'Operstate'], ['mtu', 'MTU'], ['mac', 'MAC'], ['addresses', 'Addresses'],
      ['master', 'Master'], ['peer', 'Peer'], ['owner', 'Owner names'],
    ],
  },
};

/**
 * The rows the graph's filters leave: hidden hosts and interface kinds, the network's domain (a Set
 * of graph ids, or null for all), the graph's search and the table's own filter box (substrings of
 * any cell or of a name in an interface's alias).
 */
export function filterRows(rows, { hiddenHosts = new Set(), hiddenKinds = new Set(), domain = null, query = '', text = '' } = {}) {
  const words = [query, text].map((q) => q.trim().toLowerCase()).filter(Boolean);
  return rows.filter(
    (r) =>
      !hiddenHosts.has(r.host) &&
      !hiddenKinds.has(r.kind) &&
      (!domain || domain.has(r.id)) &&
      words.every((word) => r.text.includes(word)),
  );
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

/** Sorted by one column (numbers as numbers, "n2" before "n10"), then by the row's other cells. */
export function sortRows(rows, key, direction = 'ascending') {
  const sign = direction === 'descending' ? -1 : 1;
  const compare = (a, b) => {
    const x = a.values[key];
    const y = b.values[key];
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    return collator.compare(String(x ?? ''), String(y ?? ''));
  };
  return [...rows].sort((a, b) => sign * compare(a, b) || collator.compare(a.text, b.text));
}

function csvCell(value) {
  let text = value === null || value === undefined ? '' : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`; // never a formula in a spreadsheet
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** RFC 4180 CSV: a header line, then one line per row, in the columns' order. */
export function toCsv(columns, rows) {
  const lines = [columns.map(([, label]) => csvCell(label)).join(',')];
  for (const r of rows) lines.push(columns.map(([key]) => csvCell(r.values[key])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

// ---------------------------------------------------------------------------------------------
// The view

/**
 * Draw the tables into `panel` (the #tables element of templates/topology/_workspace.html).
 * `context()` returns {hosts, filters, domain, selectedId}; `onSelect(row)` is called on a row
 * click or Enter; `download(filename, blob)` saves a file.
 */
export function createTableView({ panel, context, onSelect, download }) {
  const body = panel.querySelector('#table-body');
  const head = panel.querySelector('#table-head');
  const caption = panel.querySelector('#table-caption');
  const count = panel.querySelector('#table-count');
  const filterBox = panel.querySelector('#table-filter');
  const sorts = Object.fromEntries(Object.keys(TABLES).map((name) => [name, { key: 'host', direction: 'ascending' }]));
  let current = null; // the table shown, or null while the graph is
  let revealed = null; // `${table}|${selectedId}` whose row was last brought into view
  let scheduled = false;
  let lastRows = [];
  const MAX_DRAWN = 2000; // more rows than this are exported, not drawn

  function visibleRows(name = current) {
    const { hosts, filters, domain } = context();
    const table = TABLES[name];
    const rows = filterRows(table.rows(Object.values(hosts)), {
      hiddenHosts: filters.hiddenHosts, hiddenKinds: filters.hiddenKinds, domain, query: filters.query, text: filterBox.value,
    });
    return sortRows(rows, sorts[name].key, sorts[name].direction);
  }

  function renderHead() {
    const table = TABLES[current];
    const sort = sorts[current];
    head.replaceChildren(
      ...table.columns.map(([key, label]) => {
        const th = document.createElement('th');
        th.scope = 'col';
        th.dataset.key = key;
        th.setAttribute('aria-sort', sort.key === key ? sort.direction : 'none');
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'sort-button';
        button.textContent = label;
        button.dataset.sort = key;
        th.append(button);
        return th;
      }),
    );
  }

  function render() {
    scheduled = false;
    if (!current) return;
    const table = TABLES[current];
    const { selectedId } = context();
    lastRows = visibleRows();
    renderHead();
    caption.textContent = table.title;
    body.replaceChildren(
      ...lastRows.slice(0, MAX_DRAWN).map((r) => {
        const tr = document.createElement('tr');
        tr.dataset.id = r.id;
        tr.dataset.host = r.host;
        tr.tabIndex = 0;
        if (r.id === selectedId) tr.setAttribute('aria-selected', 'true');
        for (const [key] of table.columns) {
          const td = document.createElement('td');
          td.dataset.key = key;
          const value = r.values[key];
          td.textContent = value === '' || value === null || value === undefined ? '—' : String(value);
          tr.append(td);
        }
        return tr;
      }),
    );
    const more = lastRows.length > MAX_DRAWN ? ` (first ${MAX_DRAWN} drawn; the CSV has all)` : '';
    count.textContent = `${lastRows.length} row${lastRows.length === 1 ? '' : 's'}${more}`;
    revealSelected(selectedId);
  }

  /**
   * Bring the selected element's row into view once per selection and table (when the table is
   * shown, or the graph selects something else), never again on live updates, which would take
   * the table away from where the user scrolled it.
   */
  function revealSelected(selectedId) {
    const key = selectedId === null || selectedId === undefined ? null : `${current}|${selectedId}`;
    if (key === revealed) return;
    revealed = key;
    body.querySelector('tr[aria-selected="true"]')?.scrollIntoView({ block: 'nearest' });
  }

  /** Re-render at the next animation frame, once however many changes came before it. */
  function refresh() {
    if (!current || scheduled) return;
    scheduled = true;
    requestAnimationFrame(render);
  }

  function rowOf(target) {
    const tr = target.closest('tr[data-id]');
    return tr && lastRows.find((r) => r.id === tr.dataset.id && r.host === tr.dataset.host);
  }

  head.addEventListener('click', (event) => {
    const button = event.target.closest('[data-sort]');
    if (!button) return;
    const sort = sorts[current];
    const key = button.dataset.sort;
    sorts[current] = { key, direction: sort.key === key && sort.direction === 'ascending' ? 'descending' : 'ascending' };
    render();
    head.querySelector(`[data-sort="${key}"]`)?.focus();
  });
  body.addEventListener('click', (event) => {
    const r = rowOf(event.target);
    if (r) onSelect(r);
  });
  body.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter' && event.key !== ' ') return;
    const r = rowOf(event.target);
    if (!r) return;
    event.preventDefault();
    onSelect(r);
  });
  filterBox.addEventListener('input', refresh);

  const csv = () => toCsv(TABLES[current].columns, visibleRows());

  panel.querySelector('#table-csv').addEventListener('click', () => {
    const stamp = new Date().toISOString().replace(/[:]/g, '').replace(/\..*/, '');
    download(`switchboard-${current}-${stamp}.csv`, new Blob([csv()], { type: 'text/csv' }));
  });

  return {
    get current() {
      return current;
    },
    show(name) {
      current = name;
      revealed = null;
      panel.hidden = false;
      render();
    },
    hide() {
      current = null;
      panel.hidden = true;
    },
    refresh,
    csv,
    rows: () => visibleRows(),
  };
}
