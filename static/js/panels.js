// The details panel: what one host, namespace or interface is, from the model (never the graph).
// A VXLAN device's panel also says where its FDB entries send frames (which host each remote VTEP
// is) and what the overlay check of its network found on its host, with a Re-apply button.

import { el, formatTime, plural } from './dom.js';
import { linkKind, shapingText } from './links.js';
import { hostStatus, ids } from './model.js';

/** "demo: drifted — <what differs>" for an element of a desired topology, with a link to manage it. */
function desiredText(desired) {
  if (!desired) return null;
  return el(
    'span',
    {},
    el('a', { href: '/networks/' }, desired.topology),
    `: ${desired.status}`,
    desired.message ? el('span', { class: 'muted' }, ` — ${desired.message}`) : null,
  );
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

const ZERO_MAC = '00:00:00:00:00:00';
const REAPPLY_STATUS = {
  asking: 'asking…',
  pending: 'queued',
  running: 'running…',
  succeeded: 'done',
  failed: 'failed',
  cancelled: 'cancelled',
  refused: 'refused',
};

/**
 * A table cell maker: the host(s) a remote VTEP address belongs to, "unknown" when none. Each address
 * is looked up once per table (a device's entries name a handful of VTEPs thousands of times).
 */
function vtepHostCells(model) {
  const hosts = new Map();
  return (address) => {
    if (!address) return null;
    if (!hosts.has(address)) hosts.set(address, model.vtepOwners(address).join(', '));
    return hosts.get(address) || el('span', { class: 'muted' }, 'unknown');
  };
}

/** A wide table scrolls sideways inside the panel (an empty one is its message, as it is). */
function scrolling(rows) {
  return Array.isArray(rows) ? rows : el('div', { class: 'panel-scroll' }, rows);
}

/** A VXLAN device's FDB: MAC -> remote VTEP and the host that VTEP is (the flood entries first). */
function vxlanFdbTable(model, fdb) {
  const entries = [...fdb].sort((a, b) => (b.mac === ZERO_MAC) - (a.mac === ZERO_MAC) || a.mac.localeCompare(b.mac) || String(a.dst).localeCompare(String(b.dst)));
  const ownVni = entries.some((f) => f.vni !== null && f.vni !== undefined);
  const hostOf = vtepHostCells(model);
  const rows = table(
    ['MAC', 'Remote VTEP', 'Host', ...(ownVni ? ['VNI'] : []), 'State'],
    entries.map((f) => ({
      cells: [
        f.mac === ZERO_MAC ? `${f.mac} (flood)` : f.mac,
        f.dst,
        hostOf(f.dst),
        ...(ownVni ? [f.vni === null ? null : String(f.vni)] : []),
        f.state,
      ],
    })),
  );
  return scrolling(rows);
}

/** A VXLAN device's neighbour entries: address -> MAC, and the host its FDB sends that MAC to. */
function vxlanNeighbourTable(model, neighbours, fdb) {
  const dstOf = new Map(fdb.filter((f) => f.dst && f.mac !== ZERO_MAC).map((f) => [f.mac.toLowerCase(), f.dst]));
  const sorted = [...neighbours].sort((a, b) => a.address.localeCompare(b.address, undefined, { numeric: true }));
  const hostOf = vtepHostCells(model);
  const rows = table(
    ['Address', 'MAC', 'Host', 'State'],
    sorted.map((n) => ({ cells: [n.address, n.mac, n.mac ? hostOf(dstOf.get(n.mac.toLowerCase())) : null, n.state] })),
  );
  return scrolling(rows);
}

/** Findings of the overlay check: kind, object, expected, found, why. */
function findingList(findings) {
  return el(
    'ul',
    { class: 'overlay-findings' },
    findings.map((f) =>
      el(
        'li',
        { 'data-finding': f.kind },
        el('div', {}, el('span', { class: 'finding-kind' }, f.kind), ' ', el('code', {}, f.object)),
        el('div', {}, 'expected ', el('code', {}, f.expected), ', found ', el('code', {}, f.found)),
        el('div', { class: 'finding-why' }, f.why, f.repairable ? '' : ' (re-applying does not repair this)'),
      ),
    ),
  );
}

/**
 * "Re-apply <host>" for operators (`context.canOperate`), with how the last one asked here is going
 * (`context.reapply`: 'topology|host' -> {status, error, progress}, from operation.status frames).
 */
function reapplyControls(topology, host, context) {
  if (!context.canOperate) return null;
  const state = context.reapply?.get(`${topology}|${host}`);
  const busy = ['asking', 'pending', 'running'].includes(state?.status);
  const attrs = { type: 'button', class: 'button button-primary', 'data-reapply': host, 'data-topology': topology };
  if (busy) attrs.disabled = '';
  const status = state
    ? el(
        'span',
        { class: state.status === 'failed' || state.status === 'refused' ? 'op-error' : 'muted', 'data-reapply-status': state.status },
        `apply ${REAPPLY_STATUS[state.status] ?? state.status}`,
        state.progress ? ` ${state.progress}` : '',
        state.error ? `: ${state.error}` : '',
      )
    : null;
  return el(
    'div',
    { class: 'overlay-actions' },
    el('button', attrs, busy ? `Re-applying ${host}…` : `Re-apply ${host}`),
    status,
  );
}

/** The overlay check of a VXLAN device's network, on its host: findings, or that it is consistent. */
function overlaySection(h, id, context) {
  const overlay = h.overlayOf(id);
  if (!overlay) return null;
  const { topology, network, answer, findings } = overlay;
  const title = `Overlay ${topology}.${network}`;
  if (!findings.length) {
    const elsewhere = (answer.findings ?? []).length;
    const note = answer.consistent
      ? el('p', { class: 'overlay-ok', 'data-overlay': 'consistent' }, '✓ Overlay consistent')
      : el('p', { class: 'muted', 'data-overlay': 'elsewhere' }, `Nothing found on ${h.name}; ${plural(elsewhere, 'finding')} on other hosts.`);
    return section(title, note);
  }
  return section(title, [
    el('p', { 'data-overlay': 'findings' }, `${plural(findings.length, 'finding')} on ${h.name}:`),
    findingList(findings),
    reapplyControls(topology, h.name, context),
  ]);
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
  return scrolling(rows); // prefixes never wrap
}

/**
 * A link's shaping (its root qdisc when a user set one) and, for operators (`context.canShape`), the
 * buttons that change it; `context.shapingNote` ({text, ok}) says how the last change went.
 */
function shapingSection(link, context) {
  const text = shapingText(link.shaping);
  const note = context.shapingNote;
  const actions = context.canShape
    ? el(
        'div',
        { class: 'overlay-actions shaping-actions' },
        el('button', { type: 'button', class: 'button button-small', 'data-shape': link.name }, text ? 'Change shaping…' : 'Shape this link…'),
        text ? el('button', { type: 'button', class: 'button button-small', 'data-unshape': link.name }, 'Remove shaping') : null,
      )
    : null;
  const noteClass = note ? (note.ok === false ? 'warning shaping-note' : 'hint shaping-note') : '';
  if (!text && !actions) return null;
  return section(
    'Shaping',
    el(
      'div',
      {},
      el('p', {}, text ? `⏱ ${text}: what ${link.name} sends` : 'Not shaped (the kernel’s default queue).'),
      actions,
      note ? el('p', { class: noteClass, role: 'status' }, note.text) : null,
    ),
  );
}

/**
 * `context`: {canOperate, reapply} for the overlay check's Re-apply button (see reapplyControls);
 * {canShape, shapingNote} for the Shaping section (shapingSection).
 */
export function linkDetails(model, h, id, link, context = {}) {
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
      ['Topology', desiredText(h.desiredOf(link))],
      ['Peer', peerLabel && (peerId && h.links.has(peerId) ? selectLink(peerId, peerLabel) : peerLabel)],
    ]),
    shapingSection(link, context),
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
    vx && overlaySection(h, id, context),
    h.dockerNetworkOf(link) && dockerNetworkSection(h, h.dockerNetworkOf(link)),
    h.dockerDrops(link) && section('Dropped by Docker\'s firewall', el('p', { class: 'warning' }, h.dockerDrops(link))),
    kind === 'bridge' && model.grouping && (group || model.expanded.has(id))
      ? section(
          'Endpoints',
          group
            ? el('button', { type: 'button', class: 'button', 'data-expand': id }, `Show ${group.size} grouped endpoints`)
            : el('button', { type: 'button', class: 'button', 'data-collapse': id }, 'Group endpoints again'),
        )
      : null,
    vx && section('FDB: where frames go', vxlanFdbTable(model, fdb), 'No forwarding entries.'),
    vx && section('Neighbours', vxlanNeighbourTable(model, neighbours, fdb), 'No neighbour entries on this device.'),
    section('Addresses', addresses.length ? el('ul', { class: 'plain' }, addressList(addresses, false)) : null, 'No addresses.'),
    section(`Routes via ${link.name}`, routeTable(h, link.netns, link), `No routes leave through ${link.name}.`),
    ...(vx ? [] : entryTables(neighbours, fdb)),
  ];
}

/** Neighbour and FDB entries of any interface but a VXLAN device (see vxlanFdbTable for those). */
function entryTables(neighbours, fdb) {
  return [
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

/** Where a container's published port leads, and the NAT rule doing it. */
function portCells(p) {
  const published = p.host_port ? `${p.host_ip ?? '0.0.0.0'}:${p.host_port}` : 'not published';
  return { cells: [`${p.container_port}/${p.protocol}`, published, p.nat && el('code', {}, p.nat)] };
}

/**
 * The names Docker's embedded DNS (127.0.0.11) answers for a container: the other containers on its
 * user-defined networks, by name and alias (Docker's default bridge has no such DNS).
 */
function dnsPeers(h, c) {
  const names = new Set();
  for (const e of c.endpoints) {
    if (e.network === 'bridge') continue;
    for (const other of Object.values(h.state.docker_containers)) {
      const theirs = other.id !== c.id && other.endpoints.find((x) => x.network_id === e.network_id);
      if (theirs) names.add([other.name, ...theirs.aliases.filter((a) => !other.id.startsWith(a))].join(' / '));
    }
  }
  return [...names].sort();
}

/** One container: image, mode, its networks (with the interface and host veth under each), ports, DNS. */
function containerSection(h, c) {
  const shared = c.shares && h.state.docker_containers[c.shares];
  const endpointRows = h.containerEndpoints(c).map((e) => ({
    cells: [
      e.network,
      e.ipv4 ?? e.ipv6,
      e.interface && selectLink(e.interfaceId, e.interface),
      e.host_veth && selectLink(e.vethId, e.host_veth),
      e.bridge,
      e.aliases.join(', '),
    ],
  }));
  return section(
    `Container ${c.name}`,
    [
      facts([
        ['Image', c.image],
        ['State', c.state],
        ['Mode', c.network_mode === 'default' ? 'bridge (default)' : c.network_mode],
        ['Shares', shared ? `the namespace of ${shared.name}` : null],
        ['Compose', c.project && `${c.project}${c.service ? ` / ${c.service}` : ''}`],
        ['Command', c.command && el('code', {}, c.command)],
        ['Nameservers', c.dns?.nameservers.join(', ')],
        ['Search', c.dns?.search.join(', ')],
        ['Resolves', dnsPeers(h, c).join(', ')],
      ]),
      table(['Network', 'Address', 'Interface', 'Host veth', 'Bridge', 'DNS names'], endpointRows),
      table(['Port', 'Published on', 'NAT rule'], c.ports.map(portCells)),
    ],
    'No container.',
  );
}

/** A Docker network's facts, for the panel of its bridge. */
function dockerNetworkSection(h, network) {
  const members = Object.values(h.state.docker_containers).filter((c) => c.endpoints.some((e) => e.network_id === network.id));
  return section(`Docker network ${network.name}`, [
    facts([
      ['Driver', `${network.driver} (${network.scope})`],
      ['Subnets', network.subnets.map((s) => `${s.subnet}${s.gateway ? ` via ${s.gateway}` : ''}${s.ip_range ? ` range ${s.ip_range}` : ''}`).join(', ')],
      ['Flags', [network.internal && 'internal', network.attachable && 'attachable', network.ipv6 && 'IPv6'].filter(Boolean).join(', ')],
      ['Compose', network.project],
      ['Containers', members.map((c) => c.name).sort().join(', ') || 'none'],
    ]),
  ]);
}

/** "Explain from here" / "Explain to here" for a namespace (operators: `context.canExplain`). */
function explainActions(netns, context) {
  if (!context.canExplain) return null;
  return el(
    'div',
    { class: 'overlay-actions explain-actions' },
    el('button', { type: 'button', class: 'button button-small', 'data-explain-from': netns }, 'Explain from here'),
    el('button', { type: 'button', class: 'button button-small', 'data-explain-to': netns }, 'Explain to here'),
  );
}

/** `context`: {canExplain} for the Explain path actions (explain.js). */
export function namespaceDetails(h, netns, context = {}) {
  const namespace = h.namespaces.get(netns);
  const links = [...(h.nsLinks.get(netns) ?? [])].map((id) => [id, h.links.get(id)]).sort((a, b) => a[1].index - b[1].index);
  const neighbours = inNamespace(h, 'neighbours', netns);
  return [
    el('p', { class: 'panel-sub' }, `namespace · host ${h.name}`),
    explainActions(netns, context),
    facts([
      ['Kind', namespace?.kind ?? 'unknown'],
      ['Topology', desiredText(h.nsDesired(netns))],
      ['Nodes', [...h.nodeNames(netns)].sort().join(', ')],
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
    ...h.containersIn(netns).map((c) => containerSection(h, c)),
    section('Addresses', el('ul', { class: 'plain' }, addressList(inNamespace(h, 'addresses', netns), true)), 'No addresses.'),
    section(`Routes in ${netns}`, routeTable(h, netns), 'No routes in this namespace.'),
  ];
}

function dockerText(engine) {
  if (!engine) return null;
  if (!engine.available) return engine.error;
  const swarm = engine.swarm === 'active' ? `, Swarm ${engine.swarm_manager ? 'manager' : 'worker'}` : '';
  return `engine ${engine.version} (API ${engine.api_version})${swarm}`;
}

export function hostDetails(h, context = {}) {
  const byTopology = new Map();
  for (const f of h.overlayHostFindings()) {
    const key = `${f.topology}.${f.network}`;
    if (!byTopology.has(key)) byTopology.set(key, []);
    byTopology.get(key).push(f);
  }
  return [
    el('p', { class: 'panel-sub' }, 'host'),
    facts([
      ['Status', hostStatus(h) === 'offline' && h.lastSeen ? `offline since ${formatTime(h.lastSeen)}` : hostStatus(h)],
      ['Last seen', h.lastSeen && new Date(h.lastSeen).toLocaleString()],
      ['Agent', h.agentVersion],
      ['Sequence', h.seq === null ? null : String(h.seq)],
      ['Namespaces', String(h.nsLinks.size)],
      ['Interfaces', String(h.links.size)],
      ['Docker', dockerText(h.dockerEngine())],
    ]),
    ...h.containersIn('host').map((c) => containerSection(h, c)),
    ...[...byTopology].map(([key, findings]) =>
      section(`Overlay ${key}`, [findingList(findings), reapplyControls(findings[0].topology, h.name, context)]),
    ),
  ];
}

