// Filters and search: which hosts, interface kinds and network are shown, what the search lights,
// the sidebar controls for them, and the counts of what they hide. The tables share `filters`.

import { $, el, plural } from './dom.js';
import { COMPOSE_FILTER, hostStatus, ids } from './model.js';
import { setClass } from './graph.js';

// Interface kinds as drawn and filtered, with their filter labels; and the tunnels between VXLAN
// devices (edges, filtered the same way).
const LINK_KINDS = { bridge: 'Bridges', veth: 'veth', vxlan: 'VXLAN', lo: 'Loopback', other: 'Other', tunnel: 'Tunnels', service: 'Services' };

export const filters = {
  hiddenHosts: new Set(),
  hiddenKinds: new Set(),
  network: '', // bridge name, `compose:<project>` (model.js COMPOSE_FILTER), or '' for all
  query: '',
  // What a selected element lights besides the search (a VXLAN device: its overlay), or null.
  // It hides nothing: it dims the rest as the search does.
  highlight: null,
};

export function filtersActive() {
  return Boolean(filters.hiddenHosts.size || filters.hiddenKinds.size || filters.network || filters.query.trim());
}

/** Hide what the filters hide and light what the search finds, on `eles`; returns the search hits. */
export function applyFilters(cy, model, eles) {
  const domain = filters.network ? model.networkDomain(filters.network) : null;
  const shownParents = new Set(); // namespaces and hosts holding something in the domain
  if (domain) {
    for (const id of domain) {
      const node = cy.getElementById(id);
      if (node.nonempty()) node.ancestors().forEach((a) => shownParents.add(a.id()));
    }
  }
  const hits = model.searchMatches(filters.query);
  const lit = filters.highlight;
  const shine = hits && lit ? new Set([...hits, ...lit]) : hits ?? lit;
  const litParents = new Set();
  if (shine) {
    for (const id of shine) cy.getElementById(id).ancestors().forEach((a) => litParents.add(a.id()));
  }
  const nodeHidden = (node) => {
    const { type, host, kind } = node.data();
    if (filters.hiddenHosts.has(host)) return true;
    if ((type === 'link' || type === 'vtep' || type === 'service') && filters.hiddenKinds.has(kind)) return true;
    if (type === 'group' && filters.hiddenKinds.has('veth')) return true;
    if (!domain) return false;
    if (type === 'link' || type === 'group') return !domain.has(node.id());
    return !shownParents.has(node.id());
  };
  cy.batch(() => {
    eles.forEach((ele) => {
      if (ele.isNode()) {
        setClass(ele, 'filtered', nodeHidden(ele));
        setClass(ele, 'match', Boolean(hits?.has(ele.id())));
        setClass(ele, 'lit', Boolean(lit?.has(ele.id())));
        setClass(ele, 'dimmed', Boolean(shine) && !shine.has(ele.id()) && !litParents.has(ele.id()));
      } else {
        const ends = [ele.source().id(), ele.target().id()];
        const kind = ele.data('kind');
        if (kind === 'tunnel' || kind === 'service') setClass(ele, 'filtered', filters.hiddenKinds.has(kind));
        setClass(ele, 'lit', Boolean(lit) && ends.every((id) => lit.has(id)));
        setClass(ele, 'dimmed', Boolean(shine) && !ends.every((id) => shine.has(id)));
      }
    });
  });
  $('#search-count').textContent = hits ? `${hits.size} match${hits.size === 1 ? '' : 'es'}` : '';
  return hits;
}

export function renderKindFilters() {
  $('#kind-filters').replaceChildren(
    ...Object.entries(LINK_KINDS).map(([kind, label]) =>
      el(
        'li',
        {},
        el('label', {}, el('input', { type: 'checkbox', name: 'kind', value: kind, checked: true }), ' ', el('span', { class: `swatch k-${kind}` }), ` ${label}`),
      ),
    ),
  );
}

export function renderHostFilters(model, knownHosts) {
  const list = $('#host-filters');
  const names = [...new Set([...knownHosts, ...Object.keys(model.hosts)])].sort();
  const rendered = [...list.querySelectorAll('input')].map((input) => input.value);
  if (rendered.join('\n') !== names.join('\n')) {
    list.replaceChildren(
      ...names.map((name) =>
        el(
          'li',
          {},
          el(
            'label',
            {},
            el('input', { type: 'checkbox', value: name, checked: !filters.hiddenHosts.has(name) }),
            ` ${name} `,
            el('span', { class: 'badge', 'data-host-status': name }),
          ),
        ),
      ),
    );
  }
  for (const badge of list.querySelectorAll('[data-host-status]')) {
    const h = model.hosts[badge.dataset.hostStatus];
    const online = Boolean(h?.online);
    badge.textContent = hostStatus(h);
    badge.className = `badge ${online ? 'badge-online' : 'badge-offline'}`;
    badge.title = h?.stale
      ? 'the server refused a change from this agent and waits for its full state: the graph may be behind'
      : h?.lastSeen
        ? `last seen ${new Date(h.lastSeen).toLocaleString()}`
        : 'no agent connection yet';
  }
}

export function renderNetworkOptions(model) {
  const select = $('#network-filter');
  const names = new Set();
  for (const h of Object.values(model.hosts)) for (const id of h.bridges) names.add(h.links.get(id).name);
  const values = [...[...names].sort(), ...model.composeProjects().map((p) => `${COMPOSE_FILTER}${p}`)];
  const current = [...select.querySelectorAll('option')].slice(1).map((option) => option.value);
  if (current.join('\n') === values.join('\n')) return;
  const projects = values.filter((v) => v.startsWith(COMPOSE_FILTER));
  select.replaceChildren(
    el('option', { value: '' }, 'All networks'),
    ...[...names].sort().map((name) => el('option', { value: name }, name)),
    projects.length
      ? el('optgroup', { label: 'Compose projects' }, projects.map((v) => el('option', { value: v }, v.slice(COMPOSE_FILTER.length))))
      : null,
  );
  select.value = values.includes(filters.network) ? filters.network : '';
}

/** Hosts, namespaces and interfaces in the model, and how many of them the filters hide. */
export function countElements(cy, model) {
  const counts = { hosts: 0, namespaces: 0, links: 0, hidden: { hosts: 0, namespaces: 0, links: 0 } };
  const active = filtersActive();
  // A folded namespace or interface is hidden with the group node that stands for it.
  const hidden = (id) => {
    const node = cy.getElementById(id);
    return node.nonempty() && (node.hasClass('filtered') || node.ancestors('.filtered').nonempty());
  };
  for (const h of Object.values(model.hosts)) {
    counts.hosts += 1;
    counts.namespaces += h.nsLinks.size;
    counts.links += h.links.size;
    if (!active) continue;
    if (hidden(h.name)) {
      counts.hidden.hosts += 1;
      counts.hidden.namespaces += h.nsLinks.size;
      counts.hidden.links += h.links.size;
      continue;
    }
    for (const netns of h.nsLinks.keys()) {
      if (hidden(h.folded.get(netns)?.group ?? ids.ns(h.name, netns))) counts.hidden.namespaces += 1;
    }
    for (const id of h.links.keys()) {
      if (hidden(h.representative(id))) counts.hidden.links += 1;
    }
  }
  return counts;
}

/** Filters that leave no interface on screen say so, with what they hide, instead of a blank canvas. */
export function renderFilterEmpty(cy, counts) {
  const box = $('#filter-empty');
  const shown = (node) => !node.hasClass('filtered') && node.ancestors('.filtered').empty();
  const empty = filtersActive() && counts.links > 0 && !cy.nodes('.link, .group').some(shown);
  box.hidden = !empty;
  if (!empty) return;
  const { hidden } = counts;
  const what = [
    hidden.hosts && plural(hidden.hosts, 'host'),
    hidden.namespaces && plural(hidden.namespaces, 'namespace'),
    hidden.links && plural(hidden.links, 'interface'),
  ].filter(Boolean);
  $('#filter-empty-counts').textContent = `The filters hide ${what.join(', ')}.`;
}

/** Show everything again (the search is kept: it hides nothing). */
export function clearFilters() {
  filters.hiddenHosts.clear();
  filters.hiddenKinds.clear();
  filters.network = '';
  for (const input of document.querySelectorAll('#host-filters input, #kind-filters input')) input.checked = true;
  $('#network-filter').value = '';
}
