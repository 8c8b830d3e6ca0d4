// The topology page's model: every host's state exactly as the server sent it, indexes over it, the
// folding of large networks, and the graph ids each change makes dirty.
//
// Pure: no DOM, no Cytoscape, so `node --test static/js/tests/` checks it without a browser. The
// page (topology.js) feeds it socket frames and, once per animation frame, reconciles the dirty ids
// with the graph (graph.js).

import { aliasNames, linkDown, linkKind, parseOwnerAlias } from './links.js';

export const STATE_KINDS = [
  'namespaces', 'links', 'addresses', 'routes', 'neighbours', 'fdb',
  'docker_engine', 'docker_networks', 'docker_containers', 'docker_images', 'service_health',
  'traffic',
]; // traffic: "talks to" edges from conntrack, drawn by the Traffic layer (traffic.js), not from here

/**
 * A network (bridge) with more single-veth endpoints than this is folded into one "N endpoints"
 * node: beyond it, a ring of endpoint boxes around the bridge no longer fits a screen at a zoom
 * where its labels can be read. It opens on click, from the tables, or from a search match.
 */
export const FOLD_ABOVE = 24;

/** The network filter's value for a Compose project: `compose:<project>` (see networkDomain). */
export const COMPOSE_FILTER = 'compose:';

// Stable element ids (the tests and the end-to-end suite rely on these); a host's id is its name.
export const ids = {
  ns: (host, netns) => `${host}|ns|${netns}`,
  link: (host, netns, index) => `${host}|${netns}|${index}`,
  group: (bridgeId) => `${bridgeId}|endpoints`,
  vtep: (host, address) => `${host}|vtep|${address}`, // a remote VTEP no known host's VXLAN device has
  service: (host, network, service) => `${host}|svc|${network}/${service}`, // a catalog service
};

/** A service's state from its instances': passing when all pass, critical when none serves, else warning. */
export function serviceStatus(instances) {
  const states = [...instances.values()].map((i) => i.status);
  if (!states.length) return 'unknown';
  if (states.every((s) => s === 'passing')) return 'passing';
  if (states.every((s) => s === 'critical')) return 'critical';
  return 'warning';
}

/** The bridge node id of a group id. */
export function groupBridge(groupId) {
  return groupId.slice(0, -'|endpoints'.length);
}

function emptyState() {
  return Object.fromEntries(STATE_KINDS.map((kind) => [kind, {}]));
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

/** One host as the browser knows it: `state` is exactly what the server sent; the rest indexes it. */
export class HostModel {
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
    this.linkAddresses = new Map(); // link node id -> Map of state key -> address object (for labels)
    this.desired = new Map(); // desired topology name -> {status, message} (the web app's API)
    // Folding: endpoint namespace -> {bridge, veth, port} for every namespace that could fold (one
    // veth whose peer is a bridge port), those per bridge, and the ones folded now.
    this.foldable = new Map();
    this.candidates = new Map(); // bridge id -> Set of netns names
    this.folded = new Map(); // netns -> {group, bridge, veth, port}
    this.groups = new Map(); // group id -> Set of netns names
    this.hiddenPorts = new Map(); // port node id -> netns it is folded with
    // Overlays: VXLAN devices, the FDB entries naming a remote VTEP (what tunnels are drawn from),
    // the remote VTEPs no known host has (drawn as nodes of their own), and the overlay checks of
    // networks spanning hosts ('topology.network' -> {topology, network, answer}; shared by every host).
    this.vxlans = new Set(); // link node ids of VXLAN devices
    this.tunnelFdb = new Map(); // fdb state key -> entry with a dst
    this.vteps = new Map(); // vtep node id -> {id, host, address, device, bridge}
    this.overlays = new Map();
    // Docker: the containers running in each namespace, and the Docker network of each host bridge.
    this.containersByNs = new Map(); // netns -> Set of container ids
    this.dockerBridges = new Map(); // bridge name -> Docker network
    this.dockerOverlays = new Map(); // netns of a Swarm overlay's own namespace -> Docker network
    // The service catalog: each service with its instances' health, and the services in each namespace.
    this.services = new Map(); // service node id -> {id, network, name, vip, bridge, instances: Map name -> health}
    this.nsServices = new Map(); // netns -> Set of service node ids
  }

  /** The namespace of the running container at `address` on the Docker network of `bridge`, or null. */
  containerNetnsAt(bridge, address) {
    const network = this.dockerBridges.get(bridge);
    if (!network) return null;
    const holds = (e) => e.network_id === network.id && e.ipv4?.split('/')[0] === address;
    return Object.values(this.state.docker_containers).find((c) => c.netns && c.endpoints.some(holds))?.netns ?? null;
  }

  /** The containers whose namespace this is (several share one in container: mode), by name. */
  containersIn(netns) {
    const found = [...(this.containersByNs.get(netns) ?? [])].map((id) => this.state.docker_containers[id]);
    return found.filter(Boolean).sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * A container's endpoints, each with the kernel objects under it: the interface in the container's
   * namespace with the endpoint's MAC (`interface`, `interfaceId`), its veth peer on the host
   * (`host_veth`, `vethId`) and that veth's bridge (`bridge`); null where not known (yet).
   */
  containerEndpoints(container) {
    const inside = [...(this.nsLinks.get(container.netns) ?? [])].map((id) => [id, this.links.get(id)]);
    return container.endpoints.map((endpoint) => {
      const [interfaceId, link] = (endpoint.mac && inside.find(([, l]) => l.mac === endpoint.mac)) || [null, null];
      const vethId = link ? this.peerId(link) : null;
      const veth = vethId ? this.links.get(vethId) ?? null : null;
      return {
        ...endpoint,
        interface: link?.name ?? null,
        interfaceId,
        host_veth: veth?.name ?? null,
        vethId: veth ? vethId : null,
        bridge: veth?.master ?? null,
      };
    });
  }

  /** The Docker network a link is the bridge of (docker0, br-<id>), or null. */
  dockerNetworkOf(link) {
    return link?.kind === 'bridge' && this.nsKind(link.netns) === 'host' ? this.dockerBridges.get(link.name) ?? null : null;
  }

  /** Docker's engine on this host (its firewall, Swarm role), or null when the agent has not said. */
  dockerEngine() {
    return this.state.docker_engine.engine ?? null;
  }

  /**
   * Why Docker's firewall drops frames crossing a bridge of the host namespace, or null: with
   * dockerd's FORWARD policy DROP and bridge-nf-call-iptables on, a bridge that is neither Docker's
   * nor accepted in DOCKER-USER (as Switchboard's own are) carries no traffic between its ports.
   */
  dockerDrops(link) {
    const engine = this.dockerEngine();
    if (link?.kind !== 'bridge' || this.nsKind(link.netns) !== 'host' || !engine) return null;
    if (engine.forward_policy !== 'DROP' || !engine.bridge_nf_call_iptables) return null;
    if (this.dockerBridges.has(link.name) || engine.accepted_bridges.includes(link.name)) return null;
    return `Docker's iptables FORWARD policy is DROP and bridge-nf-call-iptables is on, so frames crossing ${link.name} between its ports are dropped. Accept them in DOCKER-USER: iptables -I DOCKER-USER -i ${link.name} -o ${link.name} -j ACCEPT`;
  }

  peerId(link) {
    return link && link.peer ? ids.link(this.name, link.peer.netns, link.peer.index) : null;
  }

  bridgeOf(link) {
    return link && link.master ? this.byName.get(`${link.netns}|${link.master}`) ?? null : null;
  }

  /** The kind of a namespace ('host', 'named', 'docker', 'process'), or null when not reported. */
  nsKind(netns) {
    return this.namespaces.get(netns)?.kind ?? null;
  }

  /**
   * Whether a link is drawn on its own, outside its namespace's box: a bridge of the host
   * namespace (a network's hub) and that bridge's ports (drawn between the hub and the endpoints).
   */
  floats(link) {
    if (!link || this.nsKind(link.netns) !== 'host') return false;
    if (link.kind === 'bridge') return true;
    const bridge = this.links.get(this.bridgeOf(link));
    return Boolean(bridge) && bridge.kind === 'bridge';
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

  /** The node names a namespace holds, from its interfaces' owner aliases (a node's lo, shared nodes). */
  nodeNames(netns) {
    const names = new Set();
    for (const id of this.nsLinks.get(netns) ?? []) {
      const tag = parseOwnerAlias(this.links.get(id).alias);
      if (tag?.role === 'node') aliasNames(this.links.get(id).alias).forEach((name) => names.add(name));
    }
    return names;
  }

  /** The desired topology an interface belongs to (its owner alias) with its status, or null. */
  desiredOf(link) {
    const topology = parseOwnerAlias(link?.alias)?.topology;
    const wanted = topology === undefined ? undefined : this.desired.get(topology);
    return wanted ? { topology, ...wanted } : null;
  }

  /** The desired topology a namespace belongs to: that of its node's lo. */
  nsDesired(netns) {
    for (const id of this.nsLinks.get(netns) ?? []) {
      const link = this.links.get(id);
      if (parseOwnerAlias(link.alias)?.role === 'node') return this.desiredOf(link);
    }
    return null;
  }

  /** The VXLAN device (link node id) of a network spanning hosts on this host, or null. */
  overlayDevice(topology, network) {
    let byName = null;
    for (const id of this.vxlans) {
      const link = this.links.get(id);
      const tag = parseOwnerAlias(link.alias);
      if (tag?.role === 'vxlan' && tag.topology === topology && tag.network === network) return id;
      if (this.nsKind(link.netns) === 'host' && link.name === `${topology}-${network}.vx`) byName = id;
    }
    return byName;
  }

  /**
   * The overlay check a VXLAN device is part of, with this host's findings:
   * {topology, network, answer, findings}, or null when no check covers it.
   */
  overlayOf(id) {
    if (!this.vxlans.has(id)) return null;
    for (const { topology, network, answer } of this.overlays.values()) {
      if (!answer.hosts?.some((host) => host.name === this.name) || this.overlayDevice(topology, network) !== id) continue;
      return { topology, network, answer, findings: (answer.findings ?? []).filter((f) => f.host === this.name) };
    }
    return null;
  }

  /** Overlay findings of this host for networks whose VXLAN device it lacks (shown on the host). */
  overlayHostFindings() {
    const found = [];
    for (const { topology, network, answer } of this.overlays.values()) {
      if (this.overlayDevice(topology, network)) continue;
      for (const f of answer.findings ?? []) if (f.host === this.name) found.push({ topology, network, ...f });
    }
    return found;
  }

  /** Endpoints folded into a group, and how many of them are down (their veth or its port). */
  groupCounts(groupId) {
    const members = this.groups.get(groupId) ?? new Set();
    let down = 0;
    for (const netns of members) {
      const { veth, port } = this.folded.get(netns);
      if (linkDown(this.links.get(veth)) || linkDown(this.links.get(port))) down += 1;
    }
    return { total: members.size, down };
  }
}

/** Every host's model plus what the next flush has to reconcile. */
export class TopologyModel {
  constructor() {
    this.hosts = {}; // host name -> HostModel
    this.expanded = new Set(); // bridge node ids whose endpoint group the user opened
    this.grouping = true; // fold networks with more than FOLD_ABOVE endpoints
    this.resyncRequested = false;
    this.desired = new Map(); // host name -> its desired topologies' status (see setDesired)
    this.overlays = new Map(); // 'topology.network' -> {topology, network, answer} (see setOverlay)
    // Tunnels between VXLAN devices, derived from every host's FDB (deriveTunnels) once per flush
    // when an FDB entry with a dst or a VXLAN device changed.
    this.tunnels = new Map(); // edge id -> tunnel (see deriveTunnels)
    this.tunnelsByEnd = new Map(); // node id -> Set of tunnel ids
    this.locals = new Map(); // VTEP address -> Set of host names with a VXLAN device bound to it
    this.tunnelsStale = false;
    this.pending = {
      nodes: new Map(), // element id -> {h, type, key}
      refold: new Map(), // HostModel -> Set of netns names whose folding may have changed
      snapshot: false,
      delta: false,
    };
  }

  host(name) {
    if (!this.hosts[name]) {
      this.hosts[name] = new HostModel(name);
      this.hosts[name].desired = this.desired.get(name) ?? new Map();
      this.hosts[name].overlays = this.overlays;
      this.touch(this.hosts[name], 'host', name);
    }
    return this.hosts[name];
  }

  touch(h, type, key) {
    const id = type === 'ns' ? ids.ns(h.name, key) : key;
    this.pending.nodes.set(id, { h, type, key });
  }

  refold(h, netns) {
    if (!this.pending.refold.has(h)) this.pending.refold.set(h, new Set());
    this.pending.refold.get(h).add(netns);
  }

  refoldAll() {
    for (const h of Object.values(this.hosts)) {
      for (const netns of h.nsLinks.keys()) this.refold(h, netns);
    }
  }

  // --- frames ------------------------------------------------------------------------------------

  /**
   * Apply one socket frame. Returns true when the page must ask the server for every snapshot
   * again (a delta was missed).
   */
  apply(frame) {
    switch (frame?.type) {
      case 'topology.snapshot':
        this.applySnapshot(frame);
        return false;
      case 'topology.delta':
        return this.applyDelta(frame);
      case 'host.status':
        this.applyHostStatus(frame);
        return false;
      default:
        return false;
    }
  }

  /** What every host frame says of its host's presence. */
  presence(frame) {
    const h = this.host(frame.host);
    h.online = Boolean(frame.online);
    h.stale = Boolean(frame.stale);
    h.lastSeen = frame.last_seen ?? h.lastSeen;
    return h;
  }

  applySnapshot(frame) {
    const h = this.presence(frame);
    h.seq = frame.seq;
    const incoming = frame.state ?? {};
    // Diff against what we hold so an agent reconnecting (or a resync) only changes what changed.
    for (const kind of STATE_KINDS) {
      const held = h.state[kind];
      const next = incoming[kind] ?? {};
      for (const key of Object.keys(held)) {
        if (!(key in next)) this.applyEvent(h, kind, 'del', key);
      }
      for (const [key, object] of Object.entries(next)) {
        if (!(key in held) || JSON.stringify(held[key]) !== JSON.stringify(object)) {
          this.applyEvent(h, kind, 'set', key, object);
        }
      }
    }
    this.touch(h, 'host', h.name);
    this.resyncRequested = false;
    this.pending.snapshot = true;
  }

  applyDelta(frame) {
    const h = this.hosts[frame.host];
    // Before this host's first snapshot, or already contained in the snapshot we hold: skip.
    if (!h || h.seq === null || frame.seq <= h.seq) return false;
    // A gap: apply what we got (closer to the truth) and ask for every host's snapshot again.
    const resync = frame.seq !== h.seq + 1 && !this.resyncRequested;
    if (resync) this.resyncRequested = true;
    h.seq = frame.seq;
    for (const event of frame.events ?? []) {
      this.applyEvent(h, event.kind, event.action, event.key, event.object);
    }
    this.pending.delta = true;
    return resync;
  }

  applyHostStatus(frame) {
    const h = this.presence(frame);
    h.agentVersion = frame.agent_version ?? h.agentVersion;
    this.touch(h, 'host', h.name);
  }

  /** Store or delete one object and mark what it affects; the state keeps the object untouched. */
  applyEvent(h, kind, action, key, object) {
    const bucket = h.state[kind];
    if (!bucket) return; // a kind this page does not know yet
    if (kind === 'addresses') this.addressChanged(h, key, bucket[key], action === 'set' ? object : null);
    if (kind === 'fdb') this.fdbChanged(h, key, bucket[key], action === 'set' ? object : null);
    if (kind === 'docker_containers') this.containerChanged(h, key, bucket[key], action === 'set' ? object : null);
    if (kind === 'docker_networks') this.dockerNetworkChanged(h, bucket[key], action === 'set' ? object : null);
    if (kind === 'docker_engine') this.dockerEngineChanged(h);
    if (kind === 'service_health') this.serviceHealthChanged(h, bucket[key], action === 'set' ? object : null);
    if (action === 'del') {
      if (!(key in bucket)) return;
      delete bucket[key];
    } else if (action === 'set') {
      bucket[key] = object;
    } else {
      return;
    }
    const value = action === 'set' ? object : null;
    if (kind === 'links') this.linkChanged(h, key, value);
    else if (kind === 'namespaces') this.namespaceChanged(h, key, value);
    // Routes and neighbours draw nothing: search and the details panel read them from the state.
    // Addresses are drawn in their interface's label (addressChanged), FDB entries with a remote
    // VTEP as tunnels (fdbChanged).
  }

  /** Keep the containers-by-namespace index in step and relabel the namespaces concerned. */
  containerChanged(h, key, was, container) {
    for (const [c, add] of [[was, false], [container, true]]) {
      if (!c?.netns) continue;
      if (add) setAdd(h.containersByNs, c.netns, key);
      else setDelete(h.containersByNs, c.netns, key);
      if (c.netns === 'host' || h.nsKind(c.netns) === 'host') this.touch(h, 'host', h.name);
      else this.touch(h, 'ns', c.netns);
    }
  }

  /** A Docker network names its bridge, or its overlay namespace: relabel that bridge or namespace. */
  dockerNetworkChanged(h, was, network) {
    for (const [n, add] of [[was, false], [network, true]]) {
      if (n?.bridge) {
        if (add) h.dockerBridges.set(n.bridge, n);
        else if (h.dockerBridges.get(n.bridge) === n) h.dockerBridges.delete(n.bridge);
        const id = h.byName.get(`host|${n.bridge}`);
        if (id) this.touch(h, 'link', id);
      }
      if (n?.netns) {
        if (add) h.dockerOverlays.set(n.netns, n);
        else if (h.dockerOverlays.get(n.netns) === n) h.dockerOverlays.delete(n.netns);
        this.touch(h, 'ns', n.netns);
      }
    }
  }

  /** An instance's health moved: its service node (label, colour, edges to its instances) is redrawn. */
  serviceHealthChanged(h, was, health) {
    for (const [report, add] of [[was, false], [health, true]]) {
      if (!report) continue;
      const id = ids.service(h.name, report.network, report.service);
      let service = h.services.get(id);
      if (add && !service) {
        service = { id, network: report.network, name: report.service, vip: null, bridge: null, instances: new Map() };
        h.services.set(id, service);
      }
      if (!service) continue;
      // A Docker service's instance has no namespace of the catalog's: its container's is found
      // when it comes (a removed one keeps what it was given).
      const netns = add
        ? report.netns ?? h.containerNetnsAt(report.bridge, report.address)
        : service.instances.get(report.instance)?.netns;
      if (netns) {
        if (add) setAdd(h.nsServices, netns, id);
        else setDelete(h.nsServices, netns, id);
      }
      if (add) {
        service.instances.set(report.instance, netns === report.netns ? report : { ...report, netns });
        service.vip = report.vip;
        service.bridge = report.bridge;
      } else {
        service.instances.delete(report.instance);
        if (!service.instances.size) h.services.delete(id);
      }
      this.touch(h, 'service', id);
    }
  }

  /** The engine's firewall decides which host bridges are marked as dropped: redraw them all. */
  dockerEngineChanged(h) {
    for (const id of h.bridges) this.touch(h, 'link', id);
  }

  /** An FDB entry naming a remote VTEP (dst) may add or remove a tunnel: derive them again. */
  fdbChanged(h, key, was, entry) {
    if (!was?.dst && !entry?.dst) return;
    if (entry?.dst) h.tunnelFdb.set(key, entry);
    else h.tunnelFdb.delete(key);
    this.tunnelsStale = true;
  }

  /** Keep the per-link address index in step and redraw the labels of the links concerned. */
  addressChanged(h, key, old, address) {
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
      if (h.links.has(id)) this.touch(h, 'link', id);
    }
  }

  linkChanged(h, key, link) {
    const oldId = h.linkIdByKey.get(key);
    if (oldId !== undefined) {
      const old = h.links.get(oldId);
      h.linkIdByKey.delete(key);
      h.links.delete(oldId);
      setDelete(h.nsLinks, old.netns, oldId);
      if (h.byName.get(`${old.netns}|${old.name}`) === oldId) h.byName.delete(`${old.netns}|${old.name}`);
      if (old.master) setDelete(h.ports, `${old.netns}|${old.master}`, oldId);
      h.bridges.delete(oldId);
      h.vxlans.delete(oldId);
      if (old.vxlan) this.tunnelsStale = true;
      this.affectedByLink(h, oldId, old);
    }
    if (link) {
      const id = ids.link(h.name, link.netns, link.index);
      h.linkIdByKey.set(key, id);
      h.links.set(id, link);
      setAdd(h.nsLinks, link.netns, id);
      h.byName.set(`${link.netns}|${link.name}`, id);
      if (link.master) setAdd(h.ports, `${link.netns}|${link.master}`, id);
      if (link.kind === 'bridge') h.bridges.add(id);
      if (link.vxlan) {
        h.vxlans.add(id);
        this.tunnelsStale = true;
      }
      this.affectedByLink(h, id, link);
    }
  }

  /** Mark every element whose look or existence depends on this link. */
  affectedByLink(h, id, link) {
    this.touch(h, 'link', id);
    this.touch(h, 'ns', link.netns); // a namespace node also exists implicitly while it holds links
    this.refold(h, link.netns);
    const peer = h.peerId(link);
    if (peer) {
      this.touch(h, 'link', peer);
      this.refold(h, link.peer.netns);
    }
    if (link.kind === 'bridge') {
      // Its ports draw their edge to it (and float with it), and the endpoints behind them may fold.
      for (const port of h.ports.get(`${link.netns}|${link.name}`) ?? []) {
        this.touch(h, 'link', port);
        const portPeer = h.links.get(port)?.peer;
        if (portPeer) this.refold(h, portPeer.netns);
      }
    }
  }

  namespaceChanged(h, key, namespace) {
    const oldName = h.nsByKey.get(key);
    if (oldName !== undefined) {
      h.nsByKey.delete(key);
      h.namespaces.delete(oldName);
      this.namespaceTouched(h, oldName);
    }
    if (namespace) {
      h.nsByKey.set(key, namespace.name);
      h.namespaces.set(namespace.name, namespace);
      this.namespaceTouched(h, namespace.name);
    }
  }

  /** A namespace's kind decides whether its bridges and their ports float: redraw them all. */
  namespaceTouched(h, netns) {
    this.touch(h, 'ns', netns);
    for (const id of h.nsServices.get(netns) ?? []) this.touch(h, 'service', id); // its edges to the box
    this.refold(h, netns);
    for (const id of h.nsLinks.get(netns) ?? []) this.touch(h, 'link', id);
  }

  // --- folding -----------------------------------------------------------------------------------

  /** What an endpoint namespace would fold into: it holds one veth (and lo) whose peer is a bridge port. */
  foldCandidate(h, netns) {
    const namespace = h.namespaces.get(netns);
    if (!namespace || namespace.kind === 'host') return null;
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
    return bridge ? { bridge, veth, port } : null;
  }

  /** Whether a bridge's endpoints are folded now. */
  bridgeFolded(h, bridge) {
    return this.grouping && !this.expanded.has(bridge) && (h.candidates.get(bridge)?.size ?? 0) > FOLD_ABOVE;
  }

  /**
   * Settle the folding of every namespace marked by refold(): first which bridge each could fold
   * into, then, per bridge touched, whether it folds; a bridge whose count crossed FOLD_ABOVE
   * refolds all its endpoints.
   */
  settleFolding() {
    for (const [h, namespaces] of this.pending.refold) {
      const bridges = new Set();
      for (const netns of namespaces) {
        const had = h.foldable.get(netns) ?? null;
        const want = h.nsLinks.has(netns) ? this.foldCandidate(h, netns) : null;
        if (had) {
          setDelete(h.candidates, had.bridge, netns);
          bridges.add(had.bridge);
        }
        if (want) {
          h.foldable.set(netns, want);
          setAdd(h.candidates, want.bridge, netns);
          bridges.add(want.bridge);
        } else {
          h.foldable.delete(netns);
        }
      }
      const settle = new Set(namespaces);
      for (const bridge of bridges) {
        const members = h.candidates.get(bridge) ?? new Set();
        const group = h.groups.get(ids.group(bridge));
        if (this.bridgeFolded(h, bridge) !== Boolean(group)) members.forEach((netns) => settle.add(netns));
        if (group) group.forEach((netns) => settle.add(netns));
        this.touch(h, 'group', ids.group(bridge)); // its count or its state may have changed
      }
      for (const netns of settle) this.applyFold(h, netns);
    }
    this.pending.refold.clear();
  }

  applyFold(h, netns) {
    const candidate = h.foldable.get(netns);
    const want = candidate && this.bridgeFolded(h, candidate.bridge) ? { group: ids.group(candidate.bridge), ...candidate } : null;
    const had = h.folded.get(netns) ?? null;
    if (had?.group === want?.group && had?.port === want?.port && had?.veth === want?.veth) return;
    if (had) {
      setDelete(h.groups, had.group, netns);
      h.hiddenPorts.delete(had.port);
      this.touch(h, 'group', had.group);
      this.touch(h, 'link', had.port);
      h.folded.delete(netns);
    }
    if (want) {
      h.folded.set(netns, want);
      setAdd(h.groups, want.group, netns);
      h.hiddenPorts.set(want.port, netns);
      this.touch(h, 'group', want.group);
      this.touch(h, 'link', want.port);
    }
    this.touch(h, 'ns', netns);
    for (const id of h.nsLinks.get(netns) ?? []) this.touch(h, 'link', id);
  }

  /**
   * The desired topologies of every host with their status (GET /api/v1/topologies/ results):
   * every interface and namespace of a topology whose status changed is redrawn.
   */
  setDesired(topologies) {
    const byHost = new Map();
    for (const t of topologies) {
      if (!byHost.has(t.host)) byHost.set(t.host, new Map());
      byHost.get(t.host).set(t.name, { status: t.status ?? 'new', message: t.status_message ?? '' });
    }
    this.desired = byHost;
    for (const h of Object.values(this.hosts)) {
      const next = byHost.get(h.name) ?? new Map();
      const changed = new Set();
      for (const name of new Set([...h.desired.keys(), ...next.keys()])) {
        if (JSON.stringify(h.desired.get(name)) !== JSON.stringify(next.get(name))) changed.add(name);
      }
      h.desired = next;
      if (!changed.size) continue;
      for (const [id, link] of h.links) {
        if (!changed.has(parseOwnerAlias(link.alias)?.topology)) continue;
        this.touch(h, 'link', id);
        this.touch(h, 'ns', link.netns);
      }
    }
  }

  /**
   * One overlay check (GET /api/v1/networks/T.N/overlay/), or null when it is gone: the VXLAN device
   * of every host it names is redrawn (its findings badge), and the host itself. Returns whether
   * anything changed.
   */
  setOverlay(topology, network, answer) {
    const key = `${topology}.${network}`;
    const old = this.overlays.get(key)?.answer ?? null;
    if (JSON.stringify(old) === JSON.stringify(answer ?? null)) return false;
    if (answer) this.overlays.set(key, { topology, network, answer });
    else this.overlays.delete(key);
    const names = new Set();
    for (const a of [old, answer]) {
      for (const host of a?.hosts ?? []) names.add(host.name);
      for (const f of a?.findings ?? []) names.add(f.host);
    }
    for (const name of names) {
      const h = this.hosts[name];
      if (!h) continue;
      const device = h.overlayDevice(topology, network);
      if (device) this.touch(h, 'link', device);
      this.touch(h, 'host', h.name);
    }
    return true;
  }

  /** Hosts with a VXLAN device bound to `address`, or named with that VTEP by an overlay check. */
  vtepOwners(address) {
    const names = new Set(this.locals.get(address) ?? []);
    for (const { answer } of this.overlays.values()) {
      for (const host of answer.hosts ?? []) if (host.vtep === address) names.add(host.name);
    }
    return [...names].sort(byNaturalOrder);
  }

  /** Derive the tunnels again and mark the edges and VTEP nodes that changed. */
  settleTunnels() {
    this.tunnelsStale = false;
    const { tunnels, vteps, locals } = deriveTunnels(Object.values(this.hosts));
    for (const id of new Set([...this.tunnels.keys(), ...tunnels.keys()])) {
      const was = this.tunnels.get(id);
      const now = tunnels.get(id);
      if (JSON.stringify(was) !== JSON.stringify(now)) this.touchTunnel(id, now ?? null);
    }
    for (const h of Object.values(this.hosts)) {
      const next = new Map([...vteps.values()].filter((v) => v.host === h.name).map((v) => [v.id, v]));
      for (const id of new Set([...h.vteps.keys(), ...next.keys()])) {
        if (JSON.stringify(h.vteps.get(id)) !== JSON.stringify(next.get(id))) this.touch(h, 'vtep', id);
      }
      h.vteps = next;
    }
    this.tunnels = tunnels;
    this.locals = locals;
    this.tunnelsByEnd = new Map();
    for (const t of tunnels.values()) {
      setAdd(this.tunnelsByEnd, t.source, t.id);
      setAdd(this.tunnelsByEnd, t.target, t.id);
    }
  }

  /** A tunnel edge to redraw: `tunnel` is what it is now (null: gone). */
  touchTunnel(id, tunnel) {
    this.pending.nodes.set(id, { type: 'tunnel', key: id, tunnel });
  }

  setGrouping(on) {
    if (this.grouping === on) return;
    this.grouping = on;
    if (!on) this.expanded.clear();
    this.refoldAll();
  }

  /** Open (or close) the endpoints folded on one bridge. */
  setExpanded(h, bridgeId, open) {
    if (open) this.expanded.add(bridgeId);
    else this.expanded.delete(bridgeId);
    for (const netns of h.candidates.get(bridgeId) ?? []) this.refold(h, netns);
    for (const netns of h.groups.get(ids.group(bridgeId)) ?? []) this.refold(h, netns);
  }

  /** Take what the next flush must reconcile: id -> {h, type, key}. */
  takeDirty() {
    this.settleFolding();
    if (this.tunnelsStale) this.settleTunnels();
    // A device drawn again (or moved) gets its tunnels again (the entries this adds are tunnels: skipped).
    for (const [id, entry] of this.pending.nodes) {
      if (entry.type !== 'link') continue;
      for (const t of this.tunnelsByEnd.get(id) ?? []) {
        if (!this.pending.nodes.has(t)) this.touchTunnel(t, this.tunnels.get(t));
      }
    }
    const dirty = new Map(this.pending.nodes);
    this.pending.nodes.clear();
    return dirty;
  }

  // --- queries -----------------------------------------------------------------------------------

  /** Node ids in the L2 domain of every bridge called `name`: bridges, ports, peers, chained bridges. */
  networkDomain(name) {
    const keep = new Set();
    const project = name.startsWith(COMPOSE_FILTER) ? name.slice(COMPOSE_FILTER.length) : null;
    for (const h of Object.values(this.hosts)) {
      if (project === null) {
        bridgeDomain(h, [...h.bridges].filter((id) => h.links.get(id).name === name), keep);
        continue;
      }
      // a Compose project: its networks' bridges with all behind them, and its containers' interfaces
      const bridges = Object.values(h.state.docker_networks).filter((n) => n.project === project && n.bridge);
      bridgeDomain(h, bridges.map((n) => h.byName.get(`host|${n.bridge}`)).filter(Boolean), keep);
      for (const c of Object.values(h.state.docker_containers)) {
        if (c.project !== project || !c.netns) continue;
        for (const id of h.nsLinks.get(c.netns) ?? []) {
          keep.add(id);
          const peer = h.peerId(h.links.get(id));
          if (peer && h.links.has(peer)) keep.add(peer);
        }
      }
    }
    return keep;
  }

  /** The Compose projects of every host's containers and networks, sorted. */
  composeProjects() {
    const projects = new Set();
    for (const h of Object.values(this.hosts)) {
      for (const kind of ['docker_containers', 'docker_networks']) {
        for (const obj of Object.values(h.state[kind])) if (obj.project) projects.add(obj.project);
      }
    }
    return [...projects].sort();
  }

  /**
   * What selecting a VXLAN device lights: the device, the other ends of its tunnels (devices on
   * other hosts, unknown VTEPs), and the L2 domain of each device's bridge (its endpoints); null
   * when the device has no tunnel.
   */
  overlayMembers(deviceId) {
    const ends = this.tunnelsByEnd.get(deviceId);
    if (!ends?.size) return null;
    const keep = new Set([deviceId]);
    const devices = new Map();
    for (const id of ends) {
      const t = this.tunnels.get(id);
      devices.set(t.source, t.sourceHost);
      if (t.unknown) keep.add(t.target);
      else devices.set(t.target, t.targetHost);
    }
    for (const [id, host] of devices) {
      keep.add(id);
      const h = this.hosts[host];
      const bridge = h?.bridgeOf(h.links.get(id));
      if (bridge) bridgeDomain(h, [bridge], keep);
    }
    return keep;
  }


  /**
   * Ids on screen that match a search: a host, namespace or interface by name, IP address or MAC,
   * or a node or network name in an owner alias (a node's name finds its namespace, its veths and
   * the `container:` nodes sharing it); a folded match lights its group.
   */
  searchMatches(rawQuery) {
    const query = rawQuery.trim().toLowerCase();
    if (!query) return null;
    const hits = new Set();
    for (const h of Object.values(this.hosts)) {
      if (h.name.toLowerCase().includes(query)) hits.add(h.name);
      const nsHit = (netns) => hits.add(h.folded.get(netns)?.group ?? ids.ns(h.name, netns));
      for (const netns of h.nsLinks.keys()) {
        if (netns.toLowerCase().includes(query)) nsHit(netns);
      }
      for (const [id, link] of h.links) {
        const names = aliasNames(link.alias);
        if (link.name.toLowerCase().includes(query) || link.mac?.includes(query) || names.some((n) => n.includes(query))) {
          // A node's lo stands for the node: its namespace is what the user looks for.
          if (parseOwnerAlias(link.alias)?.role === 'node' && names.some((n) => n.includes(query))) nsHit(link.netns);
          else hits.add(h.representative(id));
        }
      }
      for (const address of Object.values(h.state.addresses)) {
        if (!ipMatches(address, query)) continue;
        const id = ids.link(h.name, address.netns, address.ifindex);
        if (h.links.has(id)) hits.add(h.representative(id));
      }
      // Docker: a container's name, image or Compose project finds its namespace; a network's name
      // or project finds its bridge.
      for (const c of Object.values(h.state.docker_containers)) {
        if (c.netns && h.nsLinks.has(c.netns) && [c.name, c.image, c.project].some((t) => t?.toLowerCase().includes(query))) nsHit(c.netns);
      }
      for (const n of Object.values(h.state.docker_networks)) {
        const id = n.bridge && h.byName.get(`host|${n.bridge}`);
        if (id && [n.name, n.project].some((t) => t?.toLowerCase().includes(query))) hits.add(h.representative(id));
      }
      // The catalog: a service's name or VIP finds the service and the namespaces of its instances.
      for (const [id, service] of h.services) {
        if (![service.name, service.vip].some((t) => t?.toLowerCase().includes(query))) continue;
        hits.add(id);
        for (const i of service.instances.values()) if (i.netns && h.nsLinks.has(i.netns)) nsHit(i.netns);
      }
    }
    return hits;
  }
}

/** Add to `keep` the L2 domain of bridges `start` of host `h`: bridges, ports, peers, chained bridges. */
function bridgeDomain(h, start, keep) {
  const queue = [...start];
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
  return keep;
}

const MULTICAST = /^(22[4-9]|23[0-9])\.|^ff/i; // a group's flood entry is no tunnel to one host

/**
 * The tunnels between VXLAN devices, from every host's FDB: device A has a tunnel to device B (of
 * any host) when one of A's entries (the all-zeros flood entry or a per-MAC one) has dst = B's
 * local address and the entry's VNI (its own, else A's) is B's. One tunnel per pair of devices,
 * whatever the number of entries: `forward` when the source's entries point at the target,
 * `backward` the other way. A dst that no known device is bound to is an unknown VTEP: a node of
 * its own (`vteps`) on the host of the device pointing at it, unless it is the device's own
 * `remote` (the kernel's entry for it: a point-to-point tunnel to a host the dashboard does not
 * manage, which the device's label shows); a dst bound to devices of other VNIs only is no tunnel. Ends are ordered by host (natural order) then id; `gap` is how many
 * hosts apart they are in that order (hosts stand side by side in it). Pure: `hosts` are HostModels.
 * Returns {tunnels: Map id -> tunnel, vteps: Map id -> vtep, locals: Map address -> Set of hosts}.
 */
export function deriveTunnels(hosts) {
  const order = [...hosts].sort((a, b) => byNaturalOrder(a.name, b.name));
  const rank = new Map(order.map((h, i) => [h.name, i]));
  const byLocal = new Map(); // address -> [{host, id, vni}]
  const locals = new Map();
  for (const h of order) {
    for (const id of h.vxlans) {
      const vx = h.links.get(id).vxlan;
      if (!vx.local) continue;
      if (!byLocal.has(vx.local)) byLocal.set(vx.local, []);
      byLocal.get(vx.local).push({ host: h.name, id, vni: vx.vni });
      setAdd(locals, vx.local, h.name);
    }
  }
  const tunnels = new Map();
  const vteps = new Map();
  const before = (a, b) => rank.get(a.host) - rank.get(b.host) || byNaturalOrder(a.id, b.id);
  for (const h of order) {
    // A device's entries to one VTEP (its flood entry, one per remote MAC) all make the same tunnel.
    const seen = new Set();
    for (const entry of h.tunnelFdb.values()) {
      const same = `${entry.netns}|${entry.ifindex}|${entry.dst}|${entry.vni}`;
      if (seen.has(same)) continue;
      seen.add(same);
      const device = ids.link(h.name, entry.netns, entry.ifindex);
      const vx = h.links.get(device)?.vxlan;
      const dst = entry.dst;
      if (!vx || dst === vx.local || MULTICAST.test(dst)) continue;
      const vni = entry.vni ?? vx.vni;
      const far = byLocal.get(dst);
      if (!far && dst === vx.remote) continue; // the device's own remote (its label shows it), outside the dashboard
      if (!far) {
        const vtep = ids.vtep(h.name, dst);
        if (!vteps.has(vtep)) vteps.set(vtep, { id: vtep, host: h.name, address: dst, device, bridge: h.bridgeOf(h.links.get(device)) });
        const id = `tunnel:${device}~${vtep}`;
        if (!tunnels.has(id)) {
          tunnels.set(id, { id, source: device, target: vtep, sourceHost: h.name, targetHost: h.name, vni, forward: true, backward: false, unknown: true, gap: 0 });
        }
        continue;
      }
      const near = { host: h.name, id: device };
      for (const end of far) {
        if (end.vni !== vni || end.id === device) continue;
        const [a, b] = before(near, end) < 0 ? [near, end] : [end, near];
        const id = `tunnel:${a.id}~${b.id}`;
        let tunnel = tunnels.get(id);
        if (!tunnel) {
          const gap = Math.abs(rank.get(a.host) - rank.get(b.host));
          tunnel = { id, source: a.id, target: b.id, sourceHost: a.host, targetHost: b.host, vni, forward: false, backward: false, unknown: false, gap };
          tunnels.set(id, tunnel);
        }
        if (a.id === device) tunnel.forward = true;
        else tunnel.backward = true;
      }
    }
  }
  return { tunnels, vteps, locals };
}

function ipMatches(address, query) {
  const cidr = `${address.address}/${address.prefixlen}`;
  if (query.includes('/')) return cidr === query;
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(query)) return address.address === query; // a whole IPv4 address
  return cidr.includes(query);
}

/** 'online', 'resyncing' (the server waits for the agent's full state) or 'offline'. */
export function hostStatus(h) {
  if (!h?.online) return 'offline';
  return h.stale ? 'resyncing' : 'online';
}

/** Sorts "n2" before "n10". */
// One collator: localeCompare with options builds a new one per call (~100x slower in sorts).
const NATURAL = new Intl.Collator(undefined, { numeric: true });

export function byNaturalOrder(a, b) {
  return NATURAL.compare(a, b);
}
