// The Services page: the catalog in the manner of Consul's. Services with their instances counted by
// health, searched and filtered here; a service's instances with their last check, a strip of their
// check history and their DNS names. The catalog is followed with blocking queries (the answer comes
// when it changes, no polling); each instance's latest check comes live on the browser socket
// (state kind service_health), so outputs and round trips move between catalog changes too.

import { api } from './api.js';
import { $, el } from './dom.js';
import { openForm } from './forms.js';
import { TopologyModel } from './model.js';
import { Connection } from './socket.js';

const page = JSON.parse($('#services-page').textContent);
const HEALTH = ['passing', 'warning', 'critical', 'unknown'];
const WAIT = '60s'; // a blocking query's longest wait
const model = new TopologyModel();
let rows = []; // the API's service rows
let selected = decodeURIComponent(location.hash.slice(1)) || null;
let instances = []; // the selected service's instances, each with its history
let index = null; // the catalog index of what is shown (null: nothing yet, the first query does not wait)

// ---------------------------------------------------------------------------------------------
// Following the catalog

/** Blocking queries, one after the other: each answers when the catalog moves past `index`. */
async function follow() {
  for (;;) {
    try {
      const url = index === null ? page.services_url : `${page.services_url}?index=${index}&wait=${WAIT}`;
      const answer = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
      if (answer.status === 403 || answer.status === 401) {
        live(`Signed out: reload the page to sign in again.`);
        return;
      }
      if (!answer.ok) throw new Error(`the server answered ${answer.status}`);
      const next = Number(answer.headers.get('X-Switchboard-Index') ?? 0);
      rows = await answer.json();
      if (next !== index || !instances.length) await loadInstances();
      index = next;
      live('');
      render();
    } catch (error) {
      live(`Lost the catalog (${error.message}); trying again…`);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
}

function live(text) {
  $('#services-live').textContent = text;
}

let loading = 0; // the newest load of instances: an older one that answers late is dropped

/** The selected service's instances, each with its check history. */
async function loadInstances() {
  const mine = ++loading;
  if (!selected || !rows.some((r) => r.service.name === selected)) {
    instances = [];
    return;
  }
  const base = `${page.services_url}${encodeURIComponent(selected)}/instances/`;
  const listed = await api(base);
  if (mine !== loading) return;
  if (listed.status !== 200) {
    instances = [];
    return;
  }
  const loaded = await Promise.all(
    listed.data.map(async (i) => {
      const detail = await api(`${base}${encodeURIComponent(i.name)}/`);
      return detail.status === 200 ? detail.data : { ...i, history: [] };
    }),
  );
  if (mine === loading) instances = loaded;
}

// ---------------------------------------------------------------------------------------------
// Rendering

function filters() {
  return {
    q: $('#services-q').value.trim().toLowerCase(),
    health: $('#services-health').value,
    tag: $('#services-tag').value,
    network: $('#services-network').value,
    source: $('#services-source').value,
  };
}

/** Whether a service row passes the toolbar's filters. */
export function matches(row, f) {
  const s = row.service;
  const text = [s.name, s.network, s.topology, s.host, s.dns_name, s.vip, ...s.tags].join(' ').toLowerCase();
  return (
    (!f.q || text.includes(f.q)) &&
    (!f.health || row.counts[f.health] > 0) &&
    (!f.tag || s.tags.includes(f.tag)) &&
    (!f.network || `${s.host}/${s.topology}/${s.network}` === f.network) &&
    (!f.source || s.source === f.source)
  );
}

function options(select, values) {
  const current = select.value;
  select.replaceChildren(el('option', { value: '' }, 'any'), ...values.map(([value, label]) => el('option', { value }, label)));
  select.value = values.some(([value]) => value === current) ? current : '';
}

function pills(counts) {
  return HEALTH.filter((h) => counts[h]).map((h) => el('span', { class: `health health-${h}`, title: `${counts[h]} ${h}` }, String(counts[h])));
}

function checkText(check) {
  if (!check) return 'none (serving while its namespace exists)';
  const what = check.kind === 'http' ? `HTTP GET ${check.path ?? '/'}` : check.kind === 'dns' ? 'DNS query' : 'TCP connect';
  return `${what} every ${check.interval ?? 10} s`;
}

function render() {
  const tags = [...new Set(rows.flatMap((r) => r.service.tags))].sort();
  options($('#services-tag'), tags.map((t) => [t, t]));
  const nets = [...new Set(rows.map((r) => `${r.service.host}/${r.service.topology}/${r.service.network}`))].sort();
  options($('#services-network'), nets.map((n) => [n, n]));
  const f = filters();
  const shown = rows.filter((r) => matches(r, f));
  const empty = $('#services-empty');
  empty.hidden = shown.length > 0;
  empty.textContent = rows.length
    ? 'No service matches these filters.'
    : `No services yet. ${page.can_operate ? 'Create one on a managed network (New service), then register its instances: nodes of the network, or addresses; clients can register themselves through the API (/api/v1/services/).' : 'An operator can create them.'}`;
  $('#services').hidden = !shown.length;
  $('#services-body').replaceChildren(
    ...shown.map((r) => {
      const s = r.service;
      return el(
        'tr',
        { 'data-service': s.name, class: s.name === selected ? 'selected' : '', tabindex: '0' },
        el('th', { scope: 'row' }, el('a', { href: `#${encodeURIComponent(s.name)}` }, s.name)),
        el('td', {}, ...pills(r.counts), r.counts.passing + r.counts.warning + r.counts.critical + r.counts.unknown ? '' : el('span', { class: 'muted' }, 'no instances')),
        el(
          'td',
          {},
          `${s.host} · ${s.topology}/${s.network}`,
          r.network_present ? '' : el('span', { class: 'badge badge-warning', title: 'The topology no longer has this network: nothing is served.' }, 'network gone'),
          r.problems.length ? el('span', { class: 'badge badge-warning', title: r.problems.join('\n') }, 'not served') : '',
        ),
        el('td', {}, el('code', {}, s.dns_name)),
        el('td', {}, s.vip ? el('code', {}, `${s.vip}:${s.port}/${s.protocol}`) : el('span', { class: 'muted' }, `none (port ${s.port}/${s.protocol})`)),
        el('td', {}, checkText(s.check)),
        el('td', {}, ...s.tags.map((t) => el('span', { class: 'badge badge-offline' }, t))),
        el('td', {}, s.source),
      );
    }),
  );
  renderDetail();
}

/** The live check of an instance: the socket's, when newer than the catalog's. */
function liveHealth(service, instance) {
  const h = model.hosts[service.host];
  const report = h?.state.service_health[`${service.network}|${service.name}|${instance.name}`];
  if (!report) return { status: instance.status, output: instance.output, checked: instance.checked, rtt_us: instance.rtt_us };
  return { status: report.status, output: report.output, checked: new Date(report.checked_ms).toISOString(), rtt_us: report.rtt_us };
}

/** A strip of the instance's check history: one bar per point, coloured by state, tall by round trip. */
export function historyStrip(points) {
  const width = 4;
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  const shown = points.slice(-60);
  svg.setAttribute('class', 'history');
  svg.setAttribute('width', String(Math.max(shown.length, 1) * (width + 1)));
  svg.setAttribute('height', '18');
  svg.setAttribute('role', 'img');
  const changes = shown.filter((p, i) => i === 0 || p.status !== shown[i - 1].status).length;
  svg.setAttribute('aria-label', `${shown.length} checks, ${changes} state changes`);
  const slowest = Math.max(1, ...shown.map((p) => p.rtt_us ?? 0));
  shown.forEach((p, i) => {
    const bar = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
    const height = p.rtt_us ? 6 + Math.round((12 * Math.log1p(p.rtt_us)) / Math.log1p(slowest)) : 18;
    bar.setAttribute('x', String(i * (width + 1)));
    bar.setAttribute('y', String(18 - height));
    bar.setAttribute('width', String(width));
    bar.setAttribute('height', String(height));
    bar.setAttribute('class', `history-${p.status}`);
    const title = document.createElementNS('http://www.w3.org/2000/svg', 'title');
    title.textContent = `${new Date(p.at).toLocaleTimeString()} ${p.status}${p.rtt_us ? ` · ${(p.rtt_us / 1000).toFixed(1)} ms` : ''} · ${p.output}`;
    bar.append(title);
    svg.append(bar);
  });
  return svg;
}

function ago(iso) {
  if (!iso) return 'never';
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return seconds < 60 ? `${seconds} s ago` : seconds < 3600 ? `${Math.round(seconds / 60)} min ago` : new Date(iso).toLocaleString();
}

/** How long until a time to come: "in 25 s". */
function until(iso) {
  const seconds = Math.max(0, Math.round((Date.parse(iso) - Date.now()) / 1000));
  return seconds < 120 ? `in ${seconds} s` : `in ${Math.round(seconds / 60)} min`;
}

function renderDetail() {
  const row = rows.find((r) => r.service.name === selected);
  $('#service-detail').hidden = !row;
  if (!row) return;
  const s = row.service;
  $('#service-title').textContent = `${s.name} on ${s.host} · ${s.topology}/${s.network}`;
  $('#service-problems').hidden = !row.problems.length;
  $('#service-problems').textContent = row.problems.length ? `The host's agent cannot serve all of it yet: ${row.problems.join('; ')}` : '';
  $('#service-summary').textContent = `${s.dns_name} (A, AAAA, SRV; also _${s.name}._${s.protocol}.${s.network}.${page.domain}) · ${s.vip ? `service address ${s.vip}:${s.port}/${s.protocol}` : `port ${s.port}/${s.protocol}, no service address`} · check: ${checkText(s.check)}`;
  $('#service-graph').href = `${page.topology_url}?search=${encodeURIComponent(s.name)}`;
  const fromFile = s.source === 'topology';
  const fromDocker = s.source === 'docker';
  $('#service-file').hidden = !fromFile && !fromDocker;
  $('#service-file').textContent = fromFile
    ? `Declared in topology ${s.topology}’s file (its services: section): change or delete it there; instances registered through the API beside it are yours to manage here.`
    : fromDocker
      ? 'Made from its containers’ switchboard.service labels: instances come and go with the containers, and the service goes with the last one. Its VIP and check can be set through the API.'
      : '';
  if ($('#service-delete')) $('#service-delete').hidden = fromFile || fromDocker;
  if ($('#instance-new')) $('#instance-new').hidden = s.topology === '';
  $('#instances-empty').hidden = instances.length > 0;
  $('#instances').hidden = !instances.length;
  $('#instances-body').replaceChildren(
    ...instances.map((i) => {
      const h = liveHealth(s, i);
      return el(
        'tr',
        { 'data-instance': i.name },
        el('th', { scope: 'row' }, i.name, i.node ? el('span', { class: 'muted' }, ' (node)') : ''),
        el('td', {}, el('span', { class: `health health-${h.status}` }, h.status)),
        el('td', {}, el('code', {}, i.address ? `${i.address}:${i.port}` : `node ${i.node} is not on the network`)),
        el('td', {}, String(i.weight)),
        el('td', {}, el('div', {}, h.output || '—'), el('small', { class: 'muted' }, `${ago(h.checked)}${h.rtt_us ? ` · ${(h.rtt_us / 1000).toFixed(1)} ms` : ''}`)),
        el('td', {}, i.history.length ? historyStrip(i.history) : el('span', { class: 'muted' }, 'no checks yet')),
        el('td', {}, el('code', {}, i.dns_name)),
        el('td', {}, i.ttl ? `${i.ttl} s, ends ${until(i.expires)}` : el('span', { class: 'muted' }, 'none')),
        page.can_operate
          ? el(
              'td',
              {},
              i.ttl ? el('button', { type: 'button', class: 'button button-quiet', 'data-renew': i.name }, 'Renew') : '',
              i.source === 'topology'
                ? el('span', { class: 'muted', title: `Declared in topology ${s.topology}’s file` }, 'in the file')
                : i.source === 'docker'
                  ? el('span', { class: 'muted', title: 'Goes when the container stops' }, `container ${i.meta.container ?? ''}`)
                  : el('button', { type: 'button', class: 'button button-quiet', 'data-deregister': i.name }, 'Deregister'),
            )
          : '',
      );
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Forms

function list(text) {
  return (text ?? '').split(/[,\s]+/).filter(Boolean);
}

function newService() {
  const nets = page.networks.map((n) => [`${n.host}|${n.topology}/${n.name}`, `${n.host} · ${n.topology}/${n.name} (${n.subnet})`]);
  return openForm({
    title: 'New service',
    intro: nets.length ? 'On a managed network: its DNS answers on the network’s gateway, and a service address must be a free address of its subnet.' : 'No managed network yet: build a topology first (Networks page).',
    submitLabel: 'Create service',
    fields: [
      { name: 'name', label: 'Name', required: true, hint: 'A DNS label: a-z, 0-9 and -.' },
      { name: 'network', label: 'Network', type: 'select', options: nets },
      { name: 'port', label: 'Port', type: 'number', required: true, value: '80' },
      { name: 'protocol', label: 'Protocol', type: 'select', options: [['tcp', 'tcp'], ['udp', 'udp']] },
      { name: 'vip', label: 'Service address (VIP)', placeholder: '198.18.1.100', hint: 'Optional: connections to it are spread over the healthy instances.' },
      { name: 'tags', label: 'Tags', placeholder: 'web, v2' },
      { name: 'check', label: 'Health check', type: 'select', options: [['', 'none'], ['tcp', 'TCP connect'], ['http', 'HTTP GET'], ['dns', 'DNS query']] },
      { name: 'interval', label: 'Every (s)', type: 'number', value: '5', showWhen: { name: 'check', value: ['tcp', 'http', 'dns'] } },
      { name: 'timeout', label: 'Timeout (s)', type: 'number', value: '1', showWhen: { name: 'check', value: ['tcp', 'http', 'dns'] } },
      { name: 'fall', label: 'Failures before critical', type: 'number', value: '1', showWhen: { name: 'check', value: ['tcp', 'http', 'dns'] } },
      { name: 'rise', label: 'Passes before passing again', type: 'number', value: '1', showWhen: { name: 'check', value: ['tcp', 'http', 'dns'] } },
      { name: 'path', label: 'Path', value: '/', showWhen: { name: 'check', value: 'http' } },
      { name: 'query', label: 'Name to ask for', showWhen: { name: 'check', value: 'dns' }, hint: 'Empty: the service’s own name.' },
    ],
    onSubmit: (v) => {
      const [host, network] = (v.network ?? '').split('|');
      const body = { name: v.name, host, network, port: Number(v.port), protocol: v.protocol, tags: list(v.tags) };
      if (v.vip) body.vip = v.vip;
      if (v.check) {
        body.check = { kind: v.check, interval: Number(v.interval), timeout: Number(v.timeout), fall: Number(v.fall), rise: Number(v.rise) };
        if (v.check === 'http') body.check.path = v.path;
        if (v.check === 'dns' && v.query) body.check.query = v.query;
      }
      return api(page.services_url, { method: 'POST', body });
    },
  }).then((created) => {
    if (created) select(created.name);
  });
}

function registerInstance() {
  return openForm({
    title: `Register an instance of ${selected}`,
    intro: 'A node of the service’s topology on its network, or an address of the network with a port.',
    submitLabel: 'Register',
    fields: [
      { name: 'kind', label: 'Instance', type: 'select', options: [['node', 'a node'], ['address', 'an address']] },
      { name: 'node', label: 'Node', showWhen: { name: 'kind', value: 'node' } },
      { name: 'address', label: 'Address', placeholder: '198.18.1.50', showWhen: { name: 'kind', value: 'address' } },
      { name: 'port', label: 'Port', type: 'number', hint: 'Empty: the service’s port.' },
      { name: 'name', label: 'Name', hint: 'Empty: the node’s name, or one made of the address.' },
      { name: 'weight', label: 'Weight', type: 'number', value: '1', hint: 'Its share of the service address’s connections.' },
      { name: 'ttl', label: 'Lease (s)', type: 'number', hint: 'Empty: none. With one, it is removed unless renewed in time.' },
    ],
    onSubmit: (v) => {
      const body = { weight: Number(v.weight || 1) };
      if (v.kind === 'node') body.node = v.node;
      else body.address = v.address;
      if (v.port) body.port = Number(v.port);
      if (v.name) body.name = v.name;
      if (v.ttl) body.ttl = Number(v.ttl);
      return api(`${page.services_url}${encodeURIComponent(selected)}/instances/`, { method: 'POST', body });
    },
  });
}

function checkDns() {
  const row = rows.find((r) => r.service.name === selected);
  if (row?.service.topology === '') {
    // a Docker network has no nodes of ours: the host asks, as a container given --dns would
    return api(`${page.services_url}${encodeURIComponent(selected)}/resolve/`, { method: 'POST', body: {} }).then((answer) =>
      answer.status === 200 ? showCheck(answer.data) : alert(`Check: ${answer.data?.message ?? `the server answered ${answer.status}`}`),
    );
  }
  return openForm({
    title: `Check ${selected}’s names from a node`,
    intro: 'Asks the service’s names from inside a node’s namespace, of the network’s DNS, as that node’s resolver does, and shows each answer beside what the catalog says.',
    submitLabel: 'Check',
    fields: [{ name: 'client', label: 'From node', hint: 'Empty: the first node on the network that is not an instance.' }],
    onSubmit: (v) => api(`${page.services_url}${encodeURIComponent(selected)}/resolve/`, { method: 'POST', body: v.client ? { client: v.client } : {} }),
  }).then((report) => {
    if (report) showCheck(report);
  });
}

function showCheck(report) {
  $('#check-result').hidden = false;
  const all = report.answers.every((a) => a.agrees);
  const from = report.client ? `From node ${report.client} (${report.netns ?? 'the host'})` : 'From the host';
  $('#check-title').textContent = `${from}, asking ${report.server}: ${all ? 'all agree' : 'they differ'}`;
  const shown = (records) => (records.length ? records.join(', ') : '(nothing)');
  $('#check-body').replaceChildren(
    ...report.answers.map((a) =>
      el(
        'tr',
        { 'data-question': `${a.name} ${a.type}` },
        el('th', { scope: 'row' }, el('code', {}, `${a.name} ${a.type}`)),
        el('td', {}, a.error ? el('span', { class: 'field-error' }, a.error) : `${a.rcode}: ${shown(a.records)}${a.rtt ? ` · ${a.rtt.toFixed(1)} ms` : ''}`),
        el('td', {}, shown(a.expected)),
        el('td', {}, el('span', { class: `health health-${a.agrees ? 'passing' : 'critical'}` }, a.agrees ? 'yes' : 'no')),
      ),
    ),
  );
}

async function request(url, method, what) {
  const answer = await api(url, { method });
  if (answer.status >= 300) alert(`${what}: ${answer.data?.message ?? `the server answered ${answer.status}`}`);
}

async function select(name) {
  if (name !== selected) $('#check-result').hidden = true;
  selected = name;
  history.replaceState(null, '', name ? `#${encodeURIComponent(name)}` : location.pathname);
  await loadInstances();
  render();
}

document.addEventListener('click', (event) => {
  const button = event.target.closest('button');
  const row = event.target.closest('tr[data-service]');
  if (!button && row) {
    event.preventDefault();
    select(row.dataset.service);
    return;
  }
  if (!button) return;
  const d = button.dataset;
  const base = `${page.services_url}${encodeURIComponent(selected ?? '')}/`;
  if (button.id === 'service-new') newService();
  else if (button.id === 'instance-new') registerInstance();
  else if (button.id === 'service-check') checkDns();
  else if (button.id === 'service-delete' && confirm(`Delete service ${selected} and its instances?`)) request(base, 'DELETE', `Delete ${selected}`);
  else if (d.deregister && confirm(`Deregister ${d.deregister}?`)) request(`${base}instances/${encodeURIComponent(d.deregister)}/`, 'DELETE', `Deregister ${d.deregister}`);
  else if (d.renew) request(`${base}instances/${encodeURIComponent(d.renew)}/renew/`, 'POST', `Renew ${d.renew}`);
});
document.addEventListener('keydown', (event) => {
  const row = event.target.closest?.('tr[data-service]');
  if (row && event.key === 'Enter') select(row.dataset.service);
});
for (const id of ['#services-q', '#services-health', '#services-tag', '#services-network', '#services-source']) {
  $(id).addEventListener('input', render);
}

// ---------------------------------------------------------------------------------------------
// Live health from the browser socket

let drawing = false;
const connection = new Connection(`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${page.ws_path}`, {
  onFrame: (frame) => {
    if (frame.type === 'operation.status') return;
    if (model.apply(frame)) connection.send({ type: 'resync' });
    if (drawing) return;
    drawing = true;
    requestAnimationFrame(() => {
      drawing = false;
      model.takeDirty();
      renderDetail();
    });
  },
  onStatus: () => {},
});
connection.open();
follow();
