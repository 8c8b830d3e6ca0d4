// The networks page: desired topologies per host, created from a topology file, edited object by
// object (topology-detail.js, at #host/name), planned and applied through the REST API
// (/api/v1/topologies/, /api/v1/operations/). Operations run on the host's agent; their progress
// comes on the browser socket as `operation.status` frames (socket.js), so the plan appears, and
// the list follows, without a reload.

import { api, coalesced } from './api.js';
import { $, el } from './dom.js';
import { linkLines, showFileErrors } from './file-errors.js';
import { createOperationsView, EarlyFrames } from './operations.js';
import { loadPreview } from './preview.js';
import { Connection } from './socket.js';
import { createDetailView } from './topology-detail.js';

const page = JSON.parse($('#networks-page').textContent);
const PLAN_MARKS = { '+': 'plan-add', '~': 'plan-change', '-': 'plan-remove', '−': 'plan-remove' };

/** The URL of one action of a topology: its detail URL with `action/` before the query. */
function actionUrl(topology, action) {
  const [path, query] = topology.url.split('?');
  return `${path}${action}/${query ? `?${query}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// The list

let topologies = [];

let listStale = false; // something changed while the list was hidden behind a topology's detail

/** Read the list again (coalesced); while a topology's detail hides it, only note that it is stale. */
const readList = coalesced(async () => {
  const { status, data } = await api(`${page.topologies_url}?page_size=500`);
  if (status !== 200) return;
  topologies = data.results;
  render();
});

function refresh() {
  listStale = $('#topologies-section').hidden;
  return listStale ? Promise.resolve() : readList();
}

function render() {
  $('#topologies-empty').hidden = topologies.length > 0;
  $('#topologies').hidden = topologies.length === 0;
  $('#topologies-body').replaceChildren(
    ...topologies.map((t) =>
      el(
        'tr',
        { 'data-topology': `${t.host}/${t.name}` },
        el('td', {}, t.host),
        el('td', {}, el('a', { href: `#${t.host}/${t.name}`, class: 'topology-link' }, el('strong', {}, t.name)), spanNote(t)),
        el('td', {}, String(t.network_count)),
        el('td', {}, String(t.node_count)),
        el('td', {}, el('span', { class: `badge status-${t.status ?? 'new'}`, title: t.status_message ?? '' }, t.status ?? 'new')),
        el(
          'td',
          { class: 'actions' },
          el('a', { href: actionUrl(t, 'export'), class: 'button button-quiet', download: `${t.name}.yaml` }, 'YAML'),
          page.can_operate
            ? [
                t.status === 'drifted'
                  ? el('button', { type: 'button', class: 'button button-primary', 'data-action': 'repair', title: 'Apply again what was applied: put back what the host lost or someone changed' }, 'Repair')
                  : null,
                el('button', { type: 'button', class: 'button', 'data-action': 'plan' }, 'Plan'),
                el('button', { type: 'button', class: 'button', 'data-action': 'destroy' }, 'Destroy'),
              ]
            : null,
        ),
      ),
    ),
  );
}

$('#topologies-body').addEventListener('click', async (event) => {
  const button = event.target.closest('button[data-action]');
  if (!button) {
    // A click anywhere else on a row opens that topology (its name is the keyboard's way in).
    const row = event.target.closest('tr[data-topology]');
    if (row && !event.target.closest('a')) location.hash = row.dataset.topology;
    return;
  }
  const key = button.closest('tr').dataset.topology;
  const topology = topologies.find((t) => `${t.host}/${t.name}` === key);
  if (!topology) return;
  if (button.dataset.action === 'destroy') {
    if (!window.confirm(`Remove everything topology ${topology.name} made on ${topology.host}?`)) return;
    await start(topology, 'destroy');
  } else {
    await start(topology, button.dataset.action === 'repair' ? 'repair' : 'plan');
  }
});

// ---------------------------------------------------------------------------------------------
// Operations: plan, then apply what it showed

const waiting = new Map(); // operation id -> {topology, kind}
// "host/name" -> the plan whose result the panel shows when it comes; an apply (or a newer plan)
// started meanwhile makes an older plan's result stale: it is never shown over what followed
const currentPlan = new Map();
const keyOf = (topology) => `${topology.host}/${topology.name}`;

/** Under a topology spanning hosts: which hosts (on its home row), or whose share this row is. */
function spanNote(t) {
  if (!t.span) return '';
  const text = t.span.home === t.host ? `spans ${t.span.hosts.join(', ')}` : `${t.host}'s share; its file is on ${t.span.home}`;
  return el('div', { class: 'muted span-note' }, text);
}
const DONE = { apply: 'Applied', destroy: 'Destroyed', repair: 'Repaired' };

async function start(topology, kind) {
  const { status, data } = await api(actionUrl(topology, kind), { method: 'POST', body: {} });
  if (status !== 202) {
    showPlan(topology, `${kind} refused: ${data.message ?? status}`, []);
    return;
  }
  waiting.set(data.operation, { topology, kind });
  if (kind === 'plan') currentPlan.set(keyOf(topology), data.operation);
  else currentPlan.delete(keyOf(topology));
  const early = endedEarly.take(data.operation);
  if (early) {
    finished(early); // it ended before this answer came: its frame is already here
    return;
  }
  operations.update({ id: data.operation, host: topology.host, kind, status: data.status });
  if (kind === 'plan') showPlan(topology, `Planning ${topology.name} on ${topology.host}…`, []);
}

/** The end of an apply, destroy or repair, in the plan panel when it shows that topology. */
function showOutcome(asked, operation) {
  if (!planned || keyOf(planned) !== keyOf(asked.topology)) return;
  const { name, host } = asked.topology;
  const text =
    operation.status === 'succeeded'
      ? `${DONE[asked.kind] ?? 'Done:'} ${name} on ${host}.`
      : `The ${asked.kind} of ${name} ${operation.status === 'cancelled' ? 'was cancelled' : 'failed'}: ${operation.error ?? operation.status}`;
  showPlan(asked.topology, text, []);
}

// Operations that ended before the answer to the request that queued them came: start() takes
// their outcome from here.
const endedEarly = new EarlyFrames();

async function finished(operation) {
  const asked = waiting.get(operation.id);
  waiting.delete(operation.id);
  const refreshed = refresh(); // the list, meanwhile
  if (!asked) {
    endedEarly.remember(operation);
    return refreshed;
  }
  if (asked.kind !== 'plan') {
    showOutcome(asked, operation);
    return refreshed;
  }
  if (currentPlan.get(keyOf(asked.topology)) !== operation.id) return refreshed; // stale: something followed it
  currentPlan.delete(keyOf(asked.topology));
  if (operation.status !== 'succeeded') {
    showPlan(asked.topology, `The plan failed: ${operation.error ?? operation.status}`, []);
    return refreshed;
  }
  const { data } = await api(`${page.operations_url}${encodeURIComponent(operation.id)}/`);
  const lines = planLines(data.result);
  const what = lines.length
    ? `What applying ${asked.topology.name} on ${asked.topology.host} would change:`
    : 'Nothing to change: the host already matches.';
  showPlan(asked.topology, what, lines, lines.length > 0);
  return refreshed;
}

const SYMBOL = { create: '+', update: '~', delete: '-' };

/** netcore's plan as it prints it ("+ namespace demo-web1 (…)"), from the result's changes. */
function planLines(result) {
  return (result?.changes ?? []).map((c) => `${SYMBOL[c.action] ?? '?'} ${c.kind} ${c.name}${c.detail ? ` (${c.detail})` : ''}`);
}

let planned = null; // the topology whose plan is shown

function showPlan(topology, text, lines, canApply = false) {
  planned = topology;
  $('#plan').hidden = false;
  $('#plan-status').textContent = text;
  $('#plan-lines').replaceChildren(...lines.map((line) => el('span', { class: PLAN_MARKS[line.trim()[0]] ?? '' }, `${line}\n`)));
  $('#plan-apply').hidden = !(canApply && page.can_operate);
  // beside a plan with changes: who will reach whom once it is applied (preview.js)
  if (canApply) loadPreview($('#plan-preview'), actionUrl(topology, 'preview'));
  else $('#plan-preview').hidden = true;
}

$('#plan-apply').addEventListener('click', async () => {
  if (!planned) return;
  $('#plan-apply').hidden = true;
  $('#plan-status').textContent = `Applying ${planned.name} on ${planned.host}…`;
  await start(planned, 'apply');
});
$('#plan-close').addEventListener('click', () => {
  $('#plan').hidden = true;
  planned = null;
});

const operations = createOperationsView($('#operations'), {
  cancel: page.can_operate
    ? (id) => api(`${page.operations_url}${encodeURIComponent(id)}/cancel/`, { method: 'POST' })
    : null,
});

function onFrame(frame) {
  if (frame?.type === 'desired.changed') {
    refresh();
    detail.refresh();
  }
  if (frame?.type !== 'operation.status') return;
  operations.update(frame.operation);
  if ('progress' in frame.operation) return; // how far a running one is: no status changed
  detail.refresh();
  const { status } = frame.operation;
  if (status === 'succeeded' || status === 'failed' || status === 'cancelled') finished(frame.operation);
  else refresh();
}

// ---------------------------------------------------------------------------------------------
// One topology (#host/name): its networks and nodes, edited object by object; every edit is
// followed by its plan, which the user applies. #host/name/plan opens it and plans it (the
// topology page links there after an edit from its graph).

const detail = createDetailView({
  canOperate: page.can_operate,
  onEdited: async (topology, what) => {
    await Promise.all([refresh(), what ? start(topology, 'plan') : null]);
  },
  onDeleted: async () => {
    location.hash = '';
    await refresh();
  },
});

async function route() {
  const [host, name, action] = decodeURIComponent(location.hash.slice(1)).split('/');
  const open = Boolean(host && name);
  $('#topologies-section').hidden = open;
  if ($('#create')) $('#create').hidden = open;
  if (!open) {
    detail.hide();
    if (listStale) refresh();
    return;
  }
  const url = `${page.topologies_url}${encodeURIComponent(name)}/?${new URLSearchParams({ host })}`;
  const shown = await detail.show(`${host}/${name}`, url);
  if (!shown) {
    $('#topologies-section').hidden = false;
    return;
  }
  if (action === 'plan' && page.can_operate) {
    history.replaceState(null, '', `#${host}/${name}`);
    await socketOpen; // the plan's result comes as a frame: not before the socket listens
    await start(shown, 'plan');
  }
}

window.addEventListener('hashchange', route);

// ---------------------------------------------------------------------------------------------
// Creating one from a topology file: errors on their line

const form = $('#create-form');
form?.addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = $('#create-text');
  const errors = $('#create-errors');
  errors.replaceChildren();
  const { status, data } = await api(page.topologies_url, {
    method: 'POST',
    body: { host: $('#create-host').value, topology: text.value },
  });
  if (status === 201) {
    text.value = '';
    await refresh();
    return;
  }
  showFileErrors(errors, text, status, data);
});
if (form) linkLines($('#create-errors'), $('#create-text'));

const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
let opened;
const socketOpen = new Promise((resolve) => (opened = resolve));
new Connection(`${scheme}://${location.host}${page.ws_path}`, {
  onFrame,
  onStatus: (status) => status === 'open' && opened(),
}).open();
refresh();
route();
