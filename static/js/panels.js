// The details panel: what one host, namespace or interface is, from the model (never the graph).

import { el, formatTime } from './dom.js';
import { linkKind } from './links.js';
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

export function linkDetails(model, h, id, link) {
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
    kind === 'bridge' && model.grouping && (group || model.expanded.has(id))
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

export function namespaceDetails(h, netns) {
  const namespace = h.namespaces.get(netns);
  const links = [...(h.nsLinks.get(netns) ?? [])].map((id) => [id, h.links.get(id)]).sort((a, b) => a[1].index - b[1].index);
  const neighbours = inNamespace(h, 'neighbours', netns);
  return [
    el('p', { class: 'panel-sub' }, `namespace · host ${h.name}`),
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
    section('Addresses', el('ul', { class: 'plain' }, addressList(inNamespace(h, 'addresses', netns), true)), 'No addresses.'),
    section(`Routes in ${netns}`, routeTable(h, netns), 'No routes in this namespace.'),
  ];
}

export function hostDetails(h) {
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

