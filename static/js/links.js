// Facts about one link object (netcore's JSON), shared by the graph, its search and the tables.
// Pure: no DOM, no Cytoscape, so `node --test` can import it.

/** The interface kind as drawn and filtered: bridge, veth, vxlan, lo or other. */
export function linkKind(link) {
  if (link.kind === 'bridge' || link.kind === 'veth' || link.kind === 'vxlan') return link.kind;
  if (link.kind === null && link.name === 'lo') return 'lo';
  return 'other';
}

export function linkDown(link) {
  return !link.up || ['down', 'lowerlayerdown', 'notpresent'].includes(link.state);
}

const OWNER_PREFIX = 'switchboard';
const OWNER_ROLES = ['bridge', 'segment', 'vxlan', 'veth', 'node'];

/**
 * The owner tag in an interface alias made by netcore.names.owner_alias, e.g.
 * "switchboard:demo:veth:node=web1" -> {topology: 'demo', role: 'veth', node: 'web1'}; a node
 * namespace's `lo` also names the container: nodes sharing it,
 * "switchboard:demo:node:node=web1:shared=db,side" -> {..., node: 'web1', shared: ['db', 'side']}.
 * null when the alias is not one of ours (the same rules as netcore.names.parse_owner_alias).
 */
export function parseOwnerAlias(alias) {
  if (!alias) return null;
  const [prefix, ...rest] = alias.split(':');
  if (prefix !== OWNER_PREFIX || rest.length < 2) return null;
  const [topology, role, ...pairs] = rest;
  if (!topology || !OWNER_ROLES.includes(role)) return null;
  const tag = { topology, role };
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    const key = at < 0 ? '' : pair.slice(0, at);
    const value = at < 0 ? '' : pair.slice(at + 1);
    if (!value || !['network', 'node', 'segment', 'shared'].includes(key) || key in tag) return null;
    tag[key] = value;
  }
  if (tag.segment !== undefined && !/^[0-9]+$/.test(tag.segment)) return null;
  if (tag.shared !== undefined) {
    const shared = tag.shared.split(',');
    if (role !== 'node' || shared.some((name) => !name) || new Set(shared).size !== shared.length) return null;
    tag.shared = shared;
  }
  return tag;
}

/** Names an alias gives its interface, as written: its node, its network, the nodes sharing it. */
export function ownerNames(alias) {
  const tag = parseOwnerAlias(alias);
  return tag ? [tag.node, tag.network, ...(tag.shared ?? [])].filter(Boolean) : [];
}

/** ownerNames lower-cased, for search. */
export function aliasNames(alias) {
  return ownerNames(alias).map((name) => name.toLowerCase());
}

/** The addresses an interface's label shows: not link- or host-scoped, IPv4 first, in order. */
function shownAddresses(addresses) {
  return addresses
    .filter((a) => a.scope !== 'link' && a.scope !== 'host')
    .sort((a, b) => a.family - b.family || a.address.localeCompare(b.address, undefined, { numeric: true }))
    .map((a) => `${a.address}/${a.prefixlen}`);
}

/**
 * A link's graph label: `brief` is its name, drawn at any zoom; `full` adds what engineers look for
 * (addresses, at most two then "+N"; a VXLAN device's VNI and where it sends: its remote or group,
 * else its local address, the VTEP other hosts' FDB entries point at, as in a network spanning
 * hosts), and its shaping (⏱ tbf 10 Mbit/s), drawn once zoomed in enough to read them. `addresses`
 * are the netcore address objects on this link.
 */
/** A rate for people: "10 Mbit/s". */
export function rateText(bits) {
  for (const [unit, size] of [['Tbit/s', 1e12], ['Gbit/s', 1e9], ['Mbit/s', 1e6], ['kbit/s', 1e3]]) {
    if (bits >= size) return `${Number((bits / size).toPrecision(3))} ${unit}`;
  }
  return `${bits} bit/s`;
}

/** A link's shaping (netcore Shaping: its root qdisc when a user set one) in a few words, or null. */
export function shapingText(shaping) {
  if (!shaping) return null;
  const parts = [shaping.kind];
  if (shaping.rate) parts.push(rateText(shaping.rate));
  if (shaping.delay_us) {
    const jitter = shaping.jitter_us ? ` ± ${shaping.jitter_us / 1000}` : '';
    parts.push(`${shaping.delay_us / 1000}${jitter} ms`);
  }
  if (shaping.loss_ppm) parts.push(`${shaping.loss_ppm / 10000}% loss`);
  return parts.join(' ');
}

export function linkLabels(link, addresses = []) {
  const lines = [link.name];
  if (linkKind(link) !== 'lo') {
    const shown = shownAddresses(addresses);
    lines.push(...shown.slice(0, 2));
    if (shown.length > 2) lines.push(`+${shown.length - 2}`);
  }
  const vx = link.vxlan;
  if (vx) {
    const remote = vx.remote ?? vx.group;
    if (remote) lines.push(`VNI ${vx.vni} → ${remote}`);
    else lines.push(vx.local ? `VNI ${vx.vni} · ${vx.local}` : `VNI ${vx.vni}`);
  }
  const shaping = shapingText(link.shaping);
  if (shaping) lines.push(`⏱ ${shaping}`);
  return { brief: shaping ? `${link.name} ⏱` : link.name, full: lines.join('\n') };
}
