// The Docker page: one host's engine, networks, containers and images, live. The browser socket's
// snapshots and deltas feed the same model the topology page keeps (model.js), so a container
// started at the docker CLI shows up at once, with the interface, host veth and bridge under it.
// Forms queue requests to the engine through the REST API (202 operations, followed in the
// operations list); the API's refusals come back under the field they name.

import { api } from './api.js';
import { $, el } from './dom.js';
import { openForm } from './forms.js';
import { TopologyModel } from './model.js';
import { createOperationsView } from './operations.js';
import { Connection } from './socket.js';

const page = JSON.parse($('#docker-page').textContent);
const RUN_MODES = [
  ['bridge', 'bridge — on a network (Docker’s default bridge if none)'],
  ['host', 'host — the host’s own namespace'],
  ['none', 'none — only lo'],
  ['container', 'container — share another container’s namespace'],
  ['overlay', 'overlay — on an attachable Swarm overlay'],
];
const model = new TopologyModel();
let host = location.hash.slice(1) || page.hosts[0] || '';
let docker = null; // this host's {online, engine, networks, containers, images}, from the model

/** The host's Docker objects as the tables show them (as the API's /api/v1/docker/ answers them). */
function dockerOf(h) {
  const state = h.state;
  const containers = Object.values(state.docker_containers)
    .map((c) => ({ ...c, endpoints: h.containerEndpoints(c) }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const members = new Map();
  for (const c of containers) for (const e of c.endpoints) members.set(e.network_id, [...(members.get(e.network_id) ?? []), c.name]);
  const networks = Object.values(state.docker_networks)
    .map((n) => ({ ...n, containers: members.get(n.id) ?? [] }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const images = Object.values(state.docker_images).sort((a, b) => (a.tags[0] ?? '~').localeCompare(b.tags[0] ?? '~'));
  return { online: h.online, engine: state.docker_engine.engine ?? null, networks, containers, images };
}

let drawing = false;

/** Redraw once per animation frame, however many frames the socket brought. */
function redraw() {
  if (drawing) return;
  drawing = true;
  requestAnimationFrame(() => {
    drawing = false;
    model.takeDirty(); // the page draws no graph: what the model marks dirty is not needed
    const h = model.hosts[host];
    docker = h && h.seq !== null ? dockerOf(h) : null;
    render();
  });
}

// ---------------------------------------------------------------------------------------------
// Rendering

function render() {
  const engine = docker?.engine;
  const available = Boolean(engine?.available);
  $('#docker-content').hidden = !available;
  const missing = $('#docker-missing');
  missing.hidden = available;
  if (!docker) missing.textContent = host ? `Waiting for ${host}'s state…` : 'No host yet: add one on the Hosts page.';
  else if (!engine) missing.textContent = `Host ${host} has not reported a Docker engine yet: is its agent connected (Hosts page)?`;
  else if (!available) missing.replaceChildren(el('strong', {}, `No Docker engine on ${host}. `), engine.error ?? '');
  $('#docker-engine').textContent = available
    ? `Docker ${engine.version} (API ${engine.api_version})${engine.swarm === 'active' ? ` · Swarm ${engine.swarm_manager ? 'manager' : 'worker'}` : ''}${docker.online ? '' : ' · agent offline: as last reported'}`
    : '';
  renderFirewall(engine);
  if (!available) return;
  renderNetworks();
  renderContainers();
  renderImages();
}

function renderFirewall(engine) {
  const box = $('#docker-firewall');
  const drops = engine?.forward_policy === 'DROP' && engine.bridge_nf_call_iptables;
  box.hidden = !drops;
  if (!drops) return;
  const accepted = engine.accepted_bridges.length ? engine.accepted_bridges.join(', ') : 'none yet';
  box.replaceChildren(
    el('strong', {}, 'Docker’s firewall drops bridged traffic on other bridges. '),
    `Its iptables FORWARD policy is DROP and bridge-nf-call-iptables is on, so frames crossing any Linux bridge of ${host}'s namespace that is not Docker's are dropped unless DOCKER-USER accepts them. Switchboard accepts its own (${accepted}); the topology graph marks any other bridge dropped this way.`,
  );
}

/** Rows grouped by Compose project (a heading row per project, with its Down button, the rest after them). */
function grouped(items, columns, row) {
  const projects = new Map();
  for (const item of items) {
    const key = item.project ?? '';
    if (!projects.has(key)) projects.set(key, []);
    projects.get(key).push(item);
  }
  const keys = [...projects.keys()].sort((a, b) => (a === '') - (b === '') || a.localeCompare(b));
  return keys.flatMap((key) => [
    key
      ? el(
          'tr',
          { class: 'group-row', 'data-project': key },
          el(
            'th',
            { colspan: String(columns), scope: 'rowgroup' },
            `Compose project ${key} `,
            page.can_operate ? actionButton('Take down', { 'data-compose-down': key }) : null,
          ),
        )
      : [],
    ...projects.get(key).map(row),
  ].flat());
}

function actionButton(label, attrs) {
  return el('button', { type: 'button', class: 'button button-quiet', ...attrs }, label);
}

function renderNetworks() {
  const columns = page.can_operate ? 7 : 6;
  $('#docker-networks-body').replaceChildren(
    ...grouped(docker.networks, columns, (n) =>
      el(
        'tr',
        { 'data-network': n.name },
        el('td', {}, el('strong', {}, n.name)),
        el('td', {}, `${n.driver} (${n.scope})`),
        el('td', {}, n.subnets.map((s) => el('div', {}, s.subnet, s.gateway ? ` via ${s.gateway}` : '', s.ip_range ? ` · range ${s.ip_range}` : '', s.aux_addresses.length ? ` · excluded ${s.aux_addresses.map((a) => a.value).join(', ')}` : ''))),
        el('td', {}, n.bridge ? el('code', {}, n.bridge) : n.netns ? el('code', {}, n.netns) : '—', n.peers.length ? ` · peers ${n.peers.map((p) => p.value).join(', ')}` : ''),
        el('td', {}, n.containers.length ? n.containers.join(', ') : el('span', { class: 'muted' }, 'none')),
        el('td', {}, [n.internal && 'internal', n.attachable && 'attachable', n.ipv6 && 'IPv6'].filter(Boolean).join(', ')),
        page.can_operate
          ? el('td', { class: 'actions' }, ['bridge', 'host', 'none'].includes(n.name) ? null : actionButton('Remove', { 'data-remove-network': n.name }))
          : null,
      ),
    ),
  );
}

function endpointText(e) {
  const plumbing = e.interface ? ` · ${e.interface} ⇄ ${e.host_veth ?? '?'}${e.bridge ? ` → ${e.bridge}` : ''}` : '';
  const aliases = e.aliases.length ? ` · DNS ${e.aliases.join(', ')}` : '';
  return el('div', {}, el('strong', {}, e.network), ` ${e.ipv4 ?? e.ipv6 ?? ''}${plumbing}${aliases}`);
}

function modeText(c) {
  if (c.mode === 'container') {
    const shared = docker.containers.find((other) => other.id === c.shares);
    return `container:${shared?.name ?? c.shares?.slice(0, 12)}`;
  }
  return c.network_mode === 'default' ? 'bridge (default)' : c.mode;
}

function renderContainers() {
  $('#docker-containers-empty').hidden = docker.containers.length > 0;
  $('#docker-containers').hidden = docker.containers.length === 0;
  const columns = page.can_operate ? 8 : 7;
  $('#docker-containers-body').replaceChildren(
    ...grouped(docker.containers, columns, (c) =>
      el(
        'tr',
        { 'data-container': c.name, class: c.state === 'running' ? '' : 'muted' },
        el('td', {}, el('strong', {}, c.name), c.service ? el('div', { class: 'muted' }, `service ${c.service}`) : null),
        el('td', {}, c.image),
        el('td', {}, el('span', { class: `badge state-${c.state}` }, c.state)),
        el('td', {}, modeText(c)),
        el('td', {}, c.netns ? el('code', {}, c.netns) : '—'),
        el('td', {}, c.endpoints.length ? c.endpoints.map(endpointText) : el('span', { class: 'muted' }, c.mode === 'none' ? 'only lo' : c.mode === 'host' ? 'the host’s interfaces' : '—')),
        el('td', {}, c.ports.filter((p) => p.host_port).map((p) => el('div', {}, `${p.host_ip ?? '0.0.0.0'}:${p.host_port} → ${p.container_port}/${p.protocol}`))),
        page.can_operate ? el('td', { class: 'actions' }, containerActions(c)) : null,
      ),
    ),
  );
}

function containerActions(c) {
  const joins = !['host', 'none', 'container'].includes(c.mode);
  return [
    joins ? actionButton('Connect…', { 'data-connect': c.name }) : null,
    ...c.endpoints.map((e) => actionButton(`Disconnect ${e.network}`, { 'data-disconnect': c.name, 'data-network': e.network })),
    c.state === 'running' ? actionButton('Stop', { 'data-stop': c.name }) : null,
    actionButton('Remove', { 'data-remove-container': c.name, 'data-running': c.state === 'running' ? '1' : '' }),
  ];
}

function renderImages() {
  $('#docker-images-empty').hidden = docker.images.length > 0;
  $('#docker-images').hidden = docker.images.length === 0;
  $('#docker-images-body').replaceChildren(
    ...docker.images.map((i) =>
      el('tr', {}, el('td', {}, i.tags.length ? i.tags.join(', ') : el('span', { class: 'muted' }, 'untagged')), el('td', {}, el('code', {}, i.id.replace('sha256:', '').slice(0, 12))), el('td', {}, `${(i.size / 2 ** 20).toFixed(1)} MiB`)),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// Requests

/** "a=b, c=d" as {a: 'b', c: 'd'}, or an error message naming the bad part. */
function pairs(text, what) {
  const out = {};
  for (const part of text.split(/[,\n]/).map((p) => p.trim()).filter(Boolean)) {
    const at = part.indexOf('=');
    if (at < 1) return { error: `${what}: "${part}" is not name=value` };
    out[part.slice(0, at).trim()] = part.slice(at + 1).trim();
  }
  return { value: out };
}

/** "8080:80, 127.0.0.1:8443:443/tcp, 53/udp" as the API's port objects, or an error message. */
export function parsePorts(text) {
  const ports = [];
  for (const part of text.split(/[,\s]+/).filter(Boolean)) {
    const match = part.match(/^(?:(?:(\[[0-9a-fA-F:]+\]|[0-9.]+):)?(\d+):)?(\d+)(?:\/(tcp|udp|sctp))?$/);
    if (!match) return { error: `"${part}" is not [host address:][host port:]container port[/protocol]` };
    const [, hostIp, hostPort, containerPort, protocol] = match;
    ports.push({
      container_port: Number(containerPort),
      protocol: protocol ?? 'tcp',
      ...(hostPort ? { host_port: Number(hostPort) } : {}),
      ...(hostIp ? { host_ip: hostIp.replace(/^\[|\]$/g, '') } : {}),
    });
  }
  return { value: ports };
}

function list(text) {
  return text.split(/[,\s]+/).filter(Boolean);
}

function refused(field, message) {
  return { status: 400, data: { fields: { [field]: [message] } } };
}

function newNetwork() {
  return openForm({
    title: `New Docker network on ${host}`,
    intro: 'The engine checks the subnet against its other networks; overlay needs a Swarm manager.',
    submitLabel: 'Create network',
    fields: [
      { name: 'name', label: 'Name', required: true },
      { name: 'driver', label: 'Driver', type: 'select', options: [['bridge', 'bridge'], ['overlay', 'overlay (Swarm)']] },
      { name: 'subnets[0].subnet', label: 'Subnet', placeholder: '198.18.10.0/24', hint: 'Empty: the engine picks one from its pools.' },
      { name: 'subnets[0].gateway', label: 'Gateway', placeholder: '198.18.10.1' },
      { name: 'subnets[0].ip_range', label: 'IP range', placeholder: '198.18.10.128/25', hint: 'Containers get addresses from here.' },
      { name: 'subnets[0].aux_addresses', label: 'Excluded addresses', placeholder: 'router=198.18.10.2', hint: 'name=address, comma-separated: kept out of the pool.' },
      { name: 'ipv6', label: 'IPv6', type: 'checkbox' },
      { name: 'internal', label: 'Internal (no route out)', type: 'checkbox' },
      { name: 'attachable', label: 'Attachable (overlay: standalone containers may join)', type: 'checkbox' },
      { name: 'labels', label: 'Labels', placeholder: 'team=net, env=lab' },
      { name: 'options', label: 'Driver options', placeholder: 'com.docker.network.bridge.enable_ip_masquerade=false' },
    ],
    onSubmit: async (v) => {
      const aux = pairs(v['subnets[0].aux_addresses'], 'excluded addresses');
      if (aux.error) return refused('subnets[0].aux_addresses', aux.error);
      const labels = pairs(v.labels, 'labels');
      if (labels.error) return refused('labels', labels.error);
      const options = pairs(v.options, 'options');
      if (options.error) return refused('options', options.error);
      const subnet = v['subnets[0].subnet'];
      const pool = { subnet, gateway: v['subnets[0].gateway'], ip_range: v['subnets[0].ip_range'], aux_addresses: aux.value };
      const body = { host, name: v.name, driver: v.driver, ipv6: v.ipv6, internal: v.internal, attachable: v.attachable, labels: labels.value, options: options.value, subnets: subnet ? [pool] : [] };
      return api(page.networks_url, { method: 'POST', body });
    },
  });
}

function runContainer() {
  const images = docker.images.flatMap((i) => i.tags).sort();
  const networks = docker.networks.filter((n) => ['bridge', 'overlay'].includes(n.driver) && n.name !== 'bridge');
  const running = docker.containers.filter((c) => c.state === 'running');
  return openForm({
    title: `Run a container on ${host}`,
    intro: images.length ? 'From an image in the engine’s local store (no registry is reachable).' : 'The engine has no local image: build or import one first.',
    submitLabel: 'Run',
    fields: [
      { name: 'image', label: 'Image', type: 'select', options: images.map((t) => [t, t]) },
      { name: 'name', label: 'Name', hint: 'Empty: Docker makes one up.' },
      { name: 'mode', label: 'Network mode', type: 'select', options: RUN_MODES },
      { name: 'network', label: 'Network', type: 'select', options: [['', 'Docker’s default bridge'], ...networks.map((n) => [n.name, `${n.name} (${n.driver})`])], showWhen: { name: 'mode', value: ['bridge', 'overlay'] } },
      { name: 'ipv4', label: 'Static IPv4 address', placeholder: '198.18.10.10', hint: 'Only on a user-defined network.', showWhen: { name: 'mode', value: ['bridge', 'overlay'] } },
      { name: 'aliases', label: 'DNS aliases', placeholder: 'web, www', showWhen: { name: 'mode', value: ['bridge', 'overlay'] } },
      { name: 'container', label: 'Share the namespace of', type: 'select', options: running.map((c) => [c.name, c.name]), showWhen: { name: 'mode', value: 'container' } },
      { name: 'ports', label: 'Published ports', placeholder: '127.0.0.1:8080:80/tcp', hint: '[host address:][host port:]container port[/protocol], comma-separated.', showWhen: { name: 'mode', value: ['bridge', 'overlay'] } },
      { name: 'command', label: 'Command', placeholder: 'httpd -f -p 80' },
    ],
    onSubmit: async (v) => {
      const ports = parsePorts(v.ports ?? '');
      if (ports.error) return refused('ports', ports.error);
      const body = { host, image: v.image, name: v.name, mode: v.mode, network: v.network, ipv4: v.ipv4, container: v.container, aliases: list(v.aliases ?? ''), ports: ports.value, command: v.command };
      for (const key of Object.keys(body)) if (body[key] === undefined || body[key] === '') delete body[key];
      return api(page.containers_url, { method: 'POST', body });
    },
  });
}

const COMPOSE_EXAMPLE = `services:
  web:
    image: switchboard/busybox
    command: httpd -f -p 80
    ports: ["127.0.0.1:8080:80"]
    networks:
      front: {ipv4_address: 198.18.10.10}
  app:
    image: switchboard/busybox
    command: sleep 3600
    networks:
      front: {ipv4_address: 198.18.10.20}
networks:
  front:
    external: true`;

function composeUp() {
  return openForm({
    title: `Deploy a compose project on ${host}`,
    intro: 'Services (image, command, networks with ipv4_address and aliases, network_mode, ports, labels, depends_on) and networks (ipam, external, …). Any other key is refused by name.',
    submitLabel: 'Deploy',
    fields: [
      { name: 'project', label: 'Project', required: true, hint: 'Lower-case letters, digits, _ and -, unless the file says name:.' },
      { name: 'file', label: 'Compose file', type: 'textarea', rows: 16, placeholder: COMPOSE_EXAMPLE },
    ],
    onSubmit: (v) => api(page.compose_url, { method: 'POST', body: { host, project: v.project, file: v.file } }),
  });
}

function connect(container) {
  const c = docker.containers.find((x) => x.name === container);
  const joined = new Set(c?.endpoints.map((e) => e.network_id));
  const networks = docker.networks.filter((n) => !joined.has(n.id) && !['host', 'none'].includes(n.name));
  return openForm({
    title: `Connect ${container} to a network`,
    submitLabel: 'Connect',
    fields: [
      { name: 'network', label: 'Network', type: 'select', options: networks.map((n) => [n.name, `${n.name} (${n.driver})`]) },
      { name: 'ipv4', label: 'Static IPv4 address', hint: 'Empty: the engine picks one.' },
      { name: 'aliases', label: 'DNS aliases', placeholder: 'db, primary' },
    ],
    onSubmit: async (v) => {
      const url = `${page.networks_url}${encodeURIComponent(host)}/${encodeURIComponent(v.network)}/connect/`;
      const body = { container, ...(v.ipv4 ? { ipv4: v.ipv4 } : {}), aliases: list(v.aliases) };
      return api(url, { method: 'POST', body });
    },
  });
}

/** A request of a table's button: queued (the operations list follows it), or an alert saying why not. */
async function request(url, method, what, body = undefined) {
  const answer = await api(url, { method, body });
  if (answer.status !== 202) alert(`${what}: ${answer.data?.message ?? `the server answered ${answer.status}`}`);
}

document.addEventListener('click', (event) => {
  const button = event.target.closest('button');
  if (!button) return;
  const d = button.dataset;
  const base = (kind, name) => `${kind === 'network' ? page.networks_url : page.containers_url}${encodeURIComponent(host)}/${encodeURIComponent(name)}/`;
  if (button.id === 'network-new') newNetwork();
  else if (button.id === 'compose-up') composeUp();
  else if (d.composeDown && confirm(`Take compose project ${d.composeDown} down (every container and network it labels)?`)) {
    request(`${page.compose_url}${encodeURIComponent(host)}/${encodeURIComponent(d.composeDown)}/`, 'DELETE', `Take ${d.composeDown} down`);
  } else if (button.id === 'container-new') runContainer();
  else if (d.connect) connect(d.connect);
  else if (d.disconnect) request(`${base('network', d.network)}disconnect/`, 'POST', `Disconnect ${d.disconnect}`, { container: d.disconnect });
  else if (d.stop) request(`${base('container', d.stop)}stop/`, 'POST', `Stop ${d.stop}`);
  else if (d.removeContainer && confirm(`Remove container ${d.removeContainer}${d.running ? ' (it is running: it is killed first)' : ''}?`)) {
    request(`${base('container', d.removeContainer)}${d.running ? '?force=1' : ''}`, 'DELETE', `Remove ${d.removeContainer}`);
  } else if (d.removeNetwork && confirm(`Remove network ${d.removeNetwork}?`)) request(base('network', d.removeNetwork), 'DELETE', `Remove ${d.removeNetwork}`);
});

// ---------------------------------------------------------------------------------------------
// Live

const operations = createOperationsView($('#operations'), {
  cancel: page.can_operate ? (id) => api(`${page.operations_url}${id}/cancel/`, { method: 'POST' }) : null,
});

let connection = null;

function onFrame(frame) {
  if (frame.type === 'operation.status') {
    operations.update(frame.operation);
    return;
  }
  if (model.apply(frame)) connection?.send({ type: 'resync' });
  if (frame.host === host) redraw();
}

const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
connection = new Connection(`${scheme}//${location.host}${page.ws_path}`, { onFrame, onStatus: () => {} });
connection.open();

$('#docker-host').value = host;
$('#docker-host').addEventListener('change', (event) => {
  host = event.target.value;
  history.replaceState(null, '', `#${host}`);
  redraw();
});
redraw();
