// One desired topology on the Networks page (/networks/#host/name): its networks and nodes in
// tables, its status live, and for operators the edits (forms of topology-edits.js), the whole file
// in a YAML editor, the auto-repair switch and deletion. Every edit ends in `onEdited(detail)`, where
// the page shows the plan of it for the user to apply.

import { api, coalesced, subUrl } from './api.js';
import { $, el } from './dom.js';
import { linkLines, showFileErrors } from './file-errors.js';
import { TopologyEditor } from './topology-edits.js';

function button(label, data, extra = {}) {
  return el('button', { type: 'button', class: 'button button-small', ...extra, ...data }, label);
}

function cellList(items) {
  return items.length ? el('ul', { class: 'plain' }, items) : '—';
}

/**
 * `canOperate`: edits offered; `onEdited(detail, what)`: after every change of the topology;
 * `onDeleted(topology)`: after it was deleted.
 */
export function createDetailView({ canOperate, onEdited, onDeleted }) {
  const root = $('#detail');
  const error = $('#detail-error');
  let editor = null; // TopologyEditor of the topology shown
  let key = null; // "host/name" shown

  function showError(message) {
    error.textContent = message ?? '';
    error.hidden = !message;
  }

  function render() {
    const t = editor.topology;
    $('#detail-title').textContent = `${t.name} on ${t.host}`;
    const badge = $('#detail-status');
    badge.className = `badge status-${t.status ?? 'new'}`;
    badge.textContent = t.status ?? 'new';
    $('#detail-message').textContent = [`version ${t.version}`, t.status_message].filter(Boolean).join(' · ');
    const repair = $('#detail-auto-repair');
    if (repair) repair.checked = Boolean(t.auto_repair);
    renderNetworks(t);
    renderNodes(t);
  }

  function renderNetworks(t) {
    $('#detail-networks-empty').hidden = t.networks.length > 0;
    $('#detail-networks').hidden = t.networks.length === 0;
    $('#detail-networks-body').replaceChildren(
      ...t.networks.map((n) =>
        el(
          'tr',
          { 'data-network': n.name },
          el('th', { scope: 'row' }, n.name),
          el('td', {}, n.driver),
          el('td', {}, el('code', {}, n.subnet)),
          el('td', {}, n.gateway ? el('code', {}, n.gateway) : '—'),
          el('td', {}, n.mtu === null || n.mtu === undefined ? 'default' : String(n.mtu)),
          el('td', {}, n.nat ? 'yes' : 'no'),
          canOperate
            ? el(
                'td',
                { class: 'actions' },
                button('Edit', { 'data-edit': 'network', 'aria-label': `Edit network ${n.name}` }),
                button('Delete', { 'data-edit': 'delete-network', 'aria-label': `Delete network ${n.name}` }, { class: 'button button-small button-danger' }),
              )
            : null,
        ),
      ),
    );
  }

  function renderNodes(t) {
    $('#detail-nodes-empty').textContent = t.networks.length
      ? 'No nodes yet — add one on a network.'
      : 'No nodes yet — add a network first, then nodes on it.';
    $('#detail-nodes-empty').hidden = t.nodes.length > 0;
    $('#detail-nodes').hidden = t.nodes.length === 0;
    $('#detail-nodes-body').replaceChildren(
      ...t.nodes.map((n) =>
        el(
          'tr',
          { 'data-node': n.name },
          el('th', { scope: 'row' }, n.name),
          el('td', {}, n.mode === 'container' ? `container:${n.container}` : n.mode),
          el(
            'td',
            {},
            cellList(
              n.attachments.map((a) =>
                el(
                  'li',
                  { 'data-network': a.network },
                  `${a.ifname} on ${a.network} `,
                  el('code', {}, a.address),
                  canOperate ? [' ', button('Detach', { 'data-edit': 'detach', 'aria-label': `Detach ${n.name} from ${a.network}` })] : null,
                ),
              ),
            ),
          ),
          el('td', {}, cellList(n.ports.map((p) => el('li', {}, el('code', {}, p.text))))),
          el(
            'td',
            {},
            cellList(
              n.routes.map((r) =>
                el(
                  'li',
                  { 'data-route': r.to },
                  el('code', {}, r.to),
                  r.via ? ` via ${r.via}` : '',
                  r.dev ? ` dev ${r.dev}` : '',
                  canOperate ? [' ', button('Remove', { 'data-edit': 'remove-route', 'aria-label': `Remove the route to ${r.to} from ${n.name}` })] : null,
                ),
              ),
            ),
          ),
          canOperate
            ? el(
                'td',
                { class: 'actions' },
                button('Edit', { 'data-edit': 'node', 'aria-label': `Edit node ${n.name}` }),
                button('Attach', { 'data-edit': 'attach', 'aria-label': `Attach ${n.name} to a network` }),
                button('Add route', { 'data-edit': 'route', 'aria-label': `Add a route to ${n.name}` }),
                button('Delete', { 'data-edit': 'delete-node', 'aria-label': `Delete node ${n.name}` }, { class: 'button button-small button-danger' }),
              )
            : null,
        ),
      ),
    );
  }

  /** Show the topology at `url` (its detail URL); null when it is not there (any more). */
  async function show(topologyKey, url) {
    const { status, data } = await api(url);
    if (status !== 200) {
      hide();
      return null;
    }
    const focus = key !== topologyKey;
    key = topologyKey;
    editor = new TopologyEditor(data, { onChange: changed });
    showError(null);
    closeYaml();
    render();
    root.hidden = false;
    if (focus) $('#detail-title').focus();
    return data;
  }

  function hide() {
    key = null;
    editor = null;
    root.hidden = true;
  }

  function changed(detail, what) {
    render();
    showError(null);
    onEdited(detail, what);
  }

  /** Read the topology shown again (its status changed, or someone edited it); coalesced. */
  const refresh = coalesced(async () => {
    if (!editor) return;
    const shown = editor;
    const { status, data } = await api(shown.topology.url);
    if (shown !== editor) return; // another one was opened meanwhile
    if (status === 200) {
      editor.topology = data;
      render();
    } else if (status === 404) {
      hide();
    }
  });

  // --- the whole file, in YAML --------------------------------------------------------------------

  const yamlForm = $('#yaml-form');
  const yamlText = $('#yaml-text');
  const yamlErrors = $('#yaml-errors');

  async function openYaml() {
    const { status, data } = await api(subUrl(editor.topology, 'export'));
    if (status !== 200) {
      showError(`The file could not be read: ${data?.message ?? status}`);
      return;
    }
    yamlText.value = data;
    yamlErrors.replaceChildren();
    yamlForm.hidden = false;
    yamlText.focus();
  }

  function closeYaml() {
    if (yamlForm) yamlForm.hidden = true;
  }

  yamlForm?.addEventListener('submit', async (event) => {
    event.preventDefault();
    yamlErrors.replaceChildren();
    const { status, data } = await editor.write('PUT', [], { topology: yamlText.value }, 'file saved');
    if (status === 200) closeYaml();
    else showFileErrors(yamlErrors, yamlText, status, data);
  });
  if (yamlForm) linkLines(yamlErrors, yamlText);
  $('#yaml-cancel')?.addEventListener('click', closeYaml);

  // --- actions ------------------------------------------------------------------------------------

  async function setAutoRepair(on) {
    const file = await api(subUrl(editor.topology, 'export'));
    const answer = file.status === 200 ? await editor.write('PUT', [], { topology: file.data, auto_repair: on }, null) : file;
    if (answer.status !== 200) {
      showError(`Auto-repair was not changed: ${answer.data?.message ?? answer.status}`);
      render();
    }
  }

  async function deleteTopology() {
    const t = editor.topology;
    if (!window.confirm(`Delete topology ${t.name} from ${t.host}? What it made on the host stays until destroyed.`)) return;
    const message = await editor.act('DELETE', [], {}, null);
    if (message) showError(message);
    else {
      hide();
      onDeleted(t);
    }
  }

  const rowActions = {
    network: (row) => editor.editNetwork(row.network),
    'delete-network': async (row) => {
      if (window.confirm(`Delete network ${row.network}?`)) showError(await editor.deleteNetwork(row.network));
    },
    node: (row) => editor.editNode(row.node),
    attach: (row) => editor.attach(row.node),
    detach: async (row) => showError(await editor.detach(row.node, row.attachment)),
    route: (row) => editor.addRoute(row.node),
    'remove-route': async (row) => showError(await editor.removeRoute(row.node, row.route)),
    'delete-node': async (row) => {
      if (window.confirm(`Delete node ${row.node}? Its routes go with it.`)) showError(await editor.deleteNode(row.node));
    },
    'add-network': () => editor.addNetwork(),
    'add-node': () => editor.addNode(),
    yaml: openYaml,
    'delete-topology': deleteTopology,
  };

  root.addEventListener('click', (event) => {
    const target = event.target.closest('button[data-edit]');
    if (!target || !editor) return;
    const row = {
      network: target.closest('[data-network]')?.dataset.network,
      node: target.closest('[data-node]')?.dataset.node,
      attachment: target.closest('li[data-network]')?.dataset.network,
      route: target.closest('[data-route]')?.dataset.route,
    };
    rowActions[target.dataset.edit]?.(row);
  });
  $('#detail-auto-repair')?.addEventListener('change', (event) => setAutoRepair(event.target.checked));

  return { show, hide, refresh, get key() { return key; } };
}
