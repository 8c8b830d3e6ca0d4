// "Why can't A reach B": the topology page's Explain path panel (operators and admins).
//
// The form asks POST /api/v1/explain/ (webapp/explain): the host's agent walks the path over its live
// kernel state (routes, veths, bridges and their FDB, VXLAN, the firewall) and sends real probes. The
// answer is shown as a verdict badge, the cause with what to do about it, the hops in order (each
// with what the probe did there: ✓ seen, ✗ not seen, – not watched) and the probe (where it was last
// seen, and the rule an nftables trace saw drop it); the hops are lit on the graph (`explain-hop`, and `explain-drop` where the walk stopped:
// style.js), again after every flush (a redrawn element loses classes the model did not give it).
// Clicking a hop selects its element on the graph. A namespace's context menu and details panel
// fill the source or the destination ("Explain from here" / "Explain to here").
//
// The pure part (the request from the form, where an error goes, which graph elements a hop names)
// is exported for `node --test static/js/tests/`; createExplain wires it to the page.

import { api } from './api.js';
import { el, plural } from './dom.js';
import { mapErrors } from './forms.js';
import { byNaturalOrder, ids } from './model.js';

export const FIELDS = ['host', 'source', 'destination', 'protocol', 'probe'];
export const RESULTS = ['REACHABLE', 'UNREACHABLE', 'INCONSISTENT'];
/** The protocol select's choices, [value, label] (netcore.explain.question.PROTOCOLS, and Auto). */
export const PROTOCOLS = [
  ['', 'Auto: TCP with a port, else ICMP'],
  ['tcp', 'TCP'],
  ['udp', 'UDP'],
  ['icmp', 'ICMP (ping)'],
];
const PORTED = new Set(['tcp', 'udp']); // protocols whose question needs a port
const STOPS = new Set(['drop', 'abort']); // a walk's (or hop's) verdicts that end it short of delivery

// ---------------------------------------------------------------------------------------------
// The question

/**
 * `ADDRESS[:PORT]`, `[IPv6]:PORT`, `NODE[:PORT]` split into {target, port} (port a string, or null).
 * A name with one colon that is not followed by a port (`docker:abc123`) is a name, as the agent
 * reads it; a bare IPv6 address has no port.
 */
export function splitPort(text) {
  const value = String(text ?? '').trim();
  const bracketed = value.match(/^\[([^\]]*)\](?::(\d+))?$/);
  if (bracketed) return { target: bracketed[1], port: bracketed[2] ?? null };
  const last = value.lastIndexOf(':');
  if (last > 0 && value.indexOf(':') === last && /^\d+$/.test(value.slice(last + 1))) {
    return { target: value.slice(0, last), port: value.slice(last + 1) };
  }
  return { target: value, port: null };
}

/**
 * The API's request from the form's values ({host, source, destination, protocol, probe}), and the
 * errors found before asking (field name -> messages): {body, errors}. An empty protocol is left to
 * the server (TCP with a port, else ICMP).
 */
export function explainRequest(values) {
  const text = (name) => String(values?.[name] ?? '').trim();
  const body = { host: text('host'), source: text('source'), destination: text('destination'), probe: values?.probe !== false };
  if (text('protocol')) body.protocol = text('protocol');
  const errors = new Map();
  if (!body.host) errors.set('host', ['Choose the host both ends are on.']);
  if (!body.source) errors.set('source', ['Name the source: a node (TOPOLOGY/NODE) or a namespace.']);
  if (!body.destination) {
    errors.set('destination', ['Name the destination: an address, a node or a namespace, with :PORT for TCP.']);
  } else if (PORTED.has(body.protocol) && splitPort(body.destination).port === null) {
    errors.set('destination', [`A ${body.protocol.toUpperCase()} question needs a port: DESTINATION:PORT.`]);
  }
  return { body, errors };
}

/** Swap the two ends: the destination's port stays with the destination (an IPv6 address in brackets). */
export function swapEnds(source, destination) {
  const { target, port } = splitPort(destination);
  const bare = String(source ?? '').trim();
  if (!bare || port === null) return { source: target, destination: bare };
  const ipv6 = /^[0-9a-f]*:[0-9a-f:.]*:[0-9a-f:.]*$/i.test(bare);
  return { source: target, destination: ipv6 ? `[${bare}]:${port}` : `${bare}:${port}` };
}

// The agent's own refusals name no field, but say which end they are about in their first words
// ("source namespace x does not exist", "destination x is neither an address nor...", "a TCP (UDP)
// question needs a port", "port 'x' is not a port", "protocol 'x' is not one of ...").
const MESSAGE_FIELDS = [
  [/^source\b/i, 'source'],
  [/^destination\b/i, 'destination'],
  [/^(a (tcp|udp) question|port\b)/i, 'destination'],
  [/^protocol\b/i, 'protocol'],
];

/**
 * Where an error answer is shown: {fields: Map name -> messages, general: [messages], offline}.
 * `fields` of a 400/404 go under their field, as do the agent's refusals that name an end in their
 * first words; the rest (an offline host: 503, a refusal: 403) is a callout.
 */
export function explainErrors(status, data) {
  const body = data && typeof data === 'object' ? data : {};
  if (status === 403) {
    return { fields: new Map(), general: [body.message ?? body.detail ?? 'Only operators and admins may explain paths.'], offline: false };
  }
  if (status === 503) {
    return { fields: new Map(), general: [body.message ?? 'The host’s agent is not connected.'], offline: true };
  }
  const mapped = mapErrors(status, data, FIELDS);
  if (!mapped.fields.size && (status === 400 || status === 404) && typeof body.message === 'string') {
    const named = MESSAGE_FIELDS.find(([pattern]) => pattern.test(body.message));
    if (named) return { fields: new Map([[named[1], [body.message]]]), general: [], offline: false };
  }
  return { ...mapped, offline: false };
}

// ---------------------------------------------------------------------------------------------
// Graph elements of an answer

/** The graph id a namespace or link is drawn as: itself, or the group of endpoints it is folded in. */
function shownId(h, target) {
  if (target.type === 'link') return h.representative(target.id);
  return h.folded.get(target.netns)?.group ?? target.id;
}

function hasNamespace(h, netns) {
  return h.nsLinks.has(netns) || h.namespaces.has(netns);
}

/**
 * What one hop names on host `h`, in path order: [{id, type: 'ns'|'link', netns}]. A route, the
 * firewall and a delivery are their namespace; a link, bridge or FDB decision its link (by name in
 * the hop's namespace); a veth also its other end (where the frame goes next); a VXLAN decision each
 * device it names. Whatever the model does not hold falls back to the namespace, or to nothing.
 */
export function hopTargets(h, hop) {
  if (!h || !hop) return [];
  const ns = hasNamespace(h, hop.netns) ? [{ id: ids.ns(h.name, hop.netns), type: 'ns', netns: hop.netns }] : [];
  const link = (name) => {
    const id = h.byName.get(`${hop.netns}|${name}`);
    return id && h.links.has(id) ? { id, type: 'link', netns: hop.netns } : null;
  };
  if (hop.kind === 'veth') {
    const out = link(hop.object);
    if (!out) return ns;
    const peer = h.peerId(h.links.get(out.id));
    return peer && h.links.has(peer) ? [out, { id: peer, type: 'link', netns: h.links.get(peer).netns }] : [out];
  }
  if (['link', 'bridge', 'fdb', 'vxlan'].includes(hop.kind)) {
    const found = String(hop.object ?? '')
      .split(/,\s*/)
      .map(link)
      .filter(Boolean);
    return found.length ? found : ns;
  }
  return ns; // route, firewall, deliver, and kinds to come
}

/**
 * The elements of a walk on host `h`: per hop its targets (raw ids, to select) and the ids drawn
 * for them (`shown`: folded ones are their group); `nodes`, every shown id in path order without
 * repeats in a row (edges are lit between neighbours); `stop`, the shown id where a walk that did
 * not deliver ended (the dropping hop's first element, else the last one reached), or null.
 */
export function walkPath(h, walk) {
  const hops = (walk?.hops ?? []).map((hop) => {
    const targets = h ? hopTargets(h, hop) : [];
    return { targets, shown: [...new Set(targets.map((t) => shownId(h, t)))] };
  });
  const nodes = [];
  for (const hop of hops) for (const id of hop.shown) if (nodes.at(-1) !== id) nodes.push(id);
  let stop = null;
  if (h && STOPS.has(walk?.verdict)) {
    const last = hops.findLast((hop) => hop.shown.length);
    const lastHop = walk.hops.at(-1);
    if (last && last === hops.at(-1) && STOPS.has(lastHop.verdict)) stop = last.shown[0];
    else if (last) stop = last.shown.at(-1);
    else if (hasNamespace(h, walk.source)) stop = shownId(h, { id: ids.ns(h.name, walk.source), type: 'ns', netns: walk.source });
  }
  return { hops, nodes, stop };
}

// ---------------------------------------------------------------------------------------------
// What the probe met

/**
 * A hop's mark from the probe's watch (`hop.probe_seen`: {out, back}, or null when not watched):
 * {mark: '✓' | '✗' | '–', state: 'seen' | 'missing' | 'unwatched', text} for a person.
 */
export function seenMark(hop) {
  const seen = hop?.probe_seen;
  if (!seen) return { mark: '–', state: 'unwatched', text: 'Not watched by the probe' };
  const where = hop.interface ? ` on ${hop.interface}` : '';
  if (!seen.out) return { mark: '✗', state: 'missing', text: `The probe was not seen${where}` };
  const back = seen.back ? `, ${plural(seen.back, 'packet')} back` : ', nothing back';
  return { mark: '✓', state: 'seen', text: `Seen by the probe${where}: ${plural(seen.out, 'packet')} out${back}` };
}

/** The rule an nftables trace saw drop the probe, in words, or null. */
export function droppedText(probe) {
  const drop = probe?.dropped_by;
  if (!drop) return null;
  return `${drop.where} in ${drop.netns}${drop.rule ? `: ${drop.rule}` : ''}`;
}

/** The first global address of a namespace (IPv4 first), or null. */
export function namespaceAddress(h, netns) {
  const found = Object.values(h?.state.addresses ?? {})
    .filter((a) => a.netns === netns && a.scope === 'universe' && !a.address.startsWith('127.') && a.address !== '::1')
    .sort((a, b) => a.family - b.family || byNaturalOrder(a.address, b.address));
  return found[0]?.address ?? null;
}

/**
 * How a namespace is named as a destination: its name, unless the agent would read a colon in it
 * as a port (`docker:abc123`): then its address (an IPv6 one in brackets when a port follows).
 */
export function destinationName(h, netns) {
  if (!netns.includes(':')) return netns;
  return namespaceAddress(h, netns) ?? netns;
}

/** The datalist of a host's namespaces: [value, label] ('docker:…' with its containers' names). */
export function namespaceChoices(h) {
  if (!h) return [];
  const names = new Set([...h.nsLinks.keys(), ...h.namespaces.keys()]);
  return [...names].sort(byNaturalOrder).map((netns) => {
    const containers = h.containersIn(netns).map((c) => c.name);
    return [netns, containers.length ? `${containers.join(' + ')} [container]` : ''];
  });
}

// ---------------------------------------------------------------------------------------------
// The panel

const CAUSE_TITLES = {
  NO_ROUTE: 'No route',
  FORWARDING_DISABLED: 'IP forwarding is off',
  REVERSE_PATH_FILTER: 'Reverse path filter',
  FIREWALL_DROP: 'A firewall rule drops it',
  DOCKER_FORWARD_DROP: 'Docker’s firewall drops it',
  LINK_DOWN: 'An interface is down',
  BRIDGE_PORT_DOWN: 'A bridge port is down',
  NO_NEIGHBOUR: 'Nobody has the next hop’s address',
  ADDRESS_CONFLICT: 'Address conflict',
  FDB_MISS_FLOOD: 'Flooded (the bridge has not learnt the MAC)',
  FDB_WRONG_PORT: 'The bridge sends it to the wrong port',
  VXLAN_NO_REMOTE: 'The VXLAN device has nowhere to send it',
  VXLAN_NO_RECEIVER: 'Nothing at the remote VTEP takes the tunnel',
  MTU_TOO_SMALL: 'Too big for a link on the path',
  NOTHING_LISTENING: 'Nothing listens on the port',
  LOOP: 'Routing loop',
  NOT_MODELLED: 'Not modelled by the walk',
  LEAVES_HOST: 'Leaves this host',
};

function setClass(ele, cls, on) {
  if (ele.hasClass(cls) !== on) ele.toggleClass(cls, on);
}

function rttText(values) {
  if (!values?.length) return null;
  const min = Math.min(...values);
  const max = Math.max(...values);
  const avg = values.reduce((a, b) => a + b, 0) / values.length;
  return `${min.toFixed(2)} / ${avg.toFixed(2)} / ${max.toFixed(2)} ms (min / avg / max)`;
}

/**
 * Wire the panel (templates/topology/_workspace.html: #explain, whose data-url is the explain API
 * and data-hosts-url the Hosts page; #btn-explain opens it). `hosts()` names every host the page
 * knows; `select(id, host)` shows one element (topology.js selectElement). Returns {open, close,
 * from, to, refresh, clear, menuEntries, answer}.
 */
export function createExplain({ panel, openButton, cy, model, hosts, select }) {
  const url = panel.dataset.url;
  const hostsUrl = panel.dataset.hostsUrl || '/hosts/';
  const q = (selector) => panel.querySelector(selector);
  const form = q('#explain-form');
  const inputs = Object.fromEntries(FIELDS.map((name) => [name, form.elements.namedItem(name)]));
  const general = q('#explain-errors');
  const progress = q('#explain-progress');
  const result = q('#explain-result');
  const submit = q('#explain-submit');
  const datalist = q('#explain-namespaces');
  let answer = null; // {host, data}: the answer shown
  let asking = false;
  let lit = new Map(); // graph element id -> 'hop' | 'drop': what refresh() lit last

  // --- the form

  function fillHosts() {
    const names = [...new Set([...hosts(), ...Object.keys(model.hosts)])].sort(byNaturalOrder);
    const chosen = inputs.host.value;
    const options = names.length === 1 ? [] : [el('option', { value: '' }, 'Choose a host…')];
    inputs.host.replaceChildren(...options, ...names.map((name) => el('option', { value: name }, name)));
    inputs.host.value = names.includes(chosen) ? chosen : names.length === 1 ? names[0] : '';
    fillNamespaces();
  }

  function fillProtocols() {
    const chosen = inputs.protocol.value;
    inputs.protocol.replaceChildren(...PROTOCOLS.map(([value, label]) => el('option', { value }, label)));
    inputs.protocol.value = PROTOCOLS.some(([value]) => value === chosen) ? chosen : '';
  }

  function fillNamespaces() {
    const choices = namespaceChoices(model.hosts[inputs.host.value]);
    datalist.replaceChildren(...choices.map(([value, label]) => el('option', label ? { value, label } : { value })));
  }

  function showErrors({ fields, general: messages, offline = false }) {
    for (const name of FIELDS) {
      const error = q(`#explain-${name}-error`);
      const mine = fields.get(name) ?? [];
      error.textContent = mine.join(' ');
      error.hidden = mine.length === 0;
      if (mine.length) inputs[name].setAttribute('aria-invalid', 'true');
      else inputs[name].removeAttribute('aria-invalid');
    }
    const hint = offline
      ? el('p', {}, 'Its agent must be running and connected before it can be asked: the ', el('a', { href: hostsUrl }, 'Hosts page'), ' shows how to start it. Then ask again.')
      : null;
    general.replaceChildren(...messages.map((message) => el('p', {}, message)), hint ?? []);
    general.hidden = messages.length === 0;
    general.dataset.offline = String(offline);
    const first = FIELDS.find((name) => fields.has(name));
    if (first) inputs[first].focus();
    else if (messages.length) general.focus();
  }

  const noErrors = () => showErrors({ fields: new Map(), general: [] });

  async function ask() {
    if (asking) return;
    const { body, errors } = explainRequest({
      host: inputs.host.value,
      source: inputs.source.value,
      destination: inputs.destination.value,
      protocol: inputs.protocol.value,
      probe: inputs.probe.checked,
    });
    if (errors.size) {
      showErrors({ fields: errors, general: [] });
      return;
    }
    noErrors();
    clear();
    asking = true;
    submit.disabled = true;
    result.setAttribute('aria-busy', 'true');
    progress.textContent = body.probe
      ? `Walking the path from ${body.source} to ${body.destination} and sending probes…`
      : `Walking the path from ${body.source} to ${body.destination}…`;
    progress.classList.remove('visually-hidden');
    progress.hidden = false;
    panel.dataset.state = 'asking';
    let reply;
    try {
      reply = await api(url, { method: 'POST', body });
    } catch (error) {
      reply = { status: 0, data: { message: `The request failed: ${error.message ?? error}` } };
    } finally {
      asking = false;
      submit.disabled = false;
      progress.hidden = true;
      result.removeAttribute('aria-busy');
    }
    if (reply.status === 200 && reply.data && typeof reply.data === 'object' && reply.data.walk) {
      answer = { host: body.host, data: reply.data };
      render();
      refresh();
      bringIntoView();
      // said once by the status line (the result itself is not a live region: it is long)
      progress.textContent = `${reply.data.result}: ${reply.data.summary}`;
      progress.classList.add('visually-hidden');
      progress.hidden = false;
      panel.dataset.state = 'answered';
    } else {
      showErrors(explainErrors(reply.status, reply.data));
      panel.dataset.state = 'refused';
    }
  }

  // --- the answer

  function hopItem(hop, index, path) {
    const selectable = path.hops[index]?.targets.length > 0;
    const verdict = el('span', { class: `verdict verdict-${hop.verdict}` }, hop.cause ? `${hop.verdict} · ${hop.cause}` : hop.verdict);
    const seen = seenMark(hop);
    const content = [
      el('span', { class: 'hop-number', 'aria-hidden': 'true' }, String(index + 1)),
      el('span', { class: `hop-seen hop-seen-${seen.state}`, 'data-seen': seen.state, title: seen.text, 'aria-label': seen.text, role: 'img' }, seen.mark),
      el(
        'span',
        { class: 'hop-body' },
        el('span', { class: 'hop-where' }, el('code', { class: 'hop-netns' }, hop.netns), ' ', el('span', { class: 'hop-kind' }, hop.kind), ' ', verdict),
        el('span', { class: 'hop-decision' }, hop.decision),
      ),
    ];
    const attrs = { class: 'hop', 'data-hop': String(index), 'data-kind': hop.kind, 'data-verdict': hop.verdict };
    if (!selectable) return el('li', attrs, el('div', { class: 'hop-row', title: 'Not drawn on the graph' }, content));
    return el(
      'li',
      attrs,
      el('button', { type: 'button', class: 'hop-row', 'data-hop': String(index), title: 'Show on the graph' }, content),
    );
  }

  function probeSection(probe) {
    if (!probe) return el('p', { class: 'muted', 'data-probe': 'none' }, 'No probe sent: the walk alone answers.');
    const rows = [
      ['Protocol', probe.protocol],
      ['Sent', String(probe.sent)],
      ['Answered', String(probe.answered)],
      ['Outcome', el('span', { class: `probe-outcome probe-${probe.outcome}` }, probe.outcome)],
      ['RTT', rttText(probe.rtt_ms)],
      ['Seen', probe.seen || null],
      ['Dropped by', droppedText(probe)],
      ['Traced in', probe.traced?.length ? probe.traced.join(', ') : null],
      ['Errors', probe.errors?.length ? [...new Set(probe.errors)].join('; ') : null],
      ['Not watched', probe.watch_errors?.length ? probe.watch_errors.join('; ') : null],
    ].filter(([, value]) => value !== null && value !== undefined && value !== '');
    return el('dl', { class: 'facts', 'data-probe': probe.outcome }, rows.map(([term, value]) => [el('dt', {}, term), el('dd', {}, value)]));
  }

  function render() {
    if (!answer) {
      result.replaceChildren();
      return;
    }
    const { data, host } = answer;
    const { walk } = data;
    const path = walkPath(model.hosts[host], walk);
    const target = `${walk.destination}${walk.port ? ` ${walk.protocol}/${walk.port}` : ` (${walk.protocol})`}`;
    const cause = walk.cause
      ? el(
          'div',
          { class: `callout explain-cause${walk.cause === 'LEAVES_HOST' || walk.cause === 'FDB_MISS_FLOOD' ? '' : ' explain-cause-problem'}`, 'data-cause': walk.cause },
          el('p', {}, el('strong', {}, CAUSE_TITLES[walk.cause] ?? walk.cause), ' ', el('code', {}, walk.cause)),
          el('p', {}, walk.message),
          walk.advice ? el('p', { class: 'explain-advice' }, el('strong', {}, 'What to do: '), walk.advice) : null,
        )
      : !(data.summary ?? '').includes(walk.message)
        ? el('p', { class: 'explain-message' }, walk.message)
        : null;
    result.replaceChildren(...[
      el(
        'div',
        { class: 'explain-head' },
        el('span', { class: `explain-badge result-${RESULTS.includes(data.result) ? data.result : 'unknown'}`, id: 'explain-verdict', 'data-result': data.result }, data.result),
        el('span', { class: 'explain-route' }, el('code', {}, walk.source), ' → ', el('code', {}, target), ` on ${host}`),
      ),
      el('p', { class: 'explain-summary' }, data.summary),
      droppedText(data.probe) ? el('p', { class: 'explain-dropped' }, el('strong', {}, 'Dropped by: '), el('code', {}, droppedText(data.probe))) : null,
      cause,
      el('h3', {}, `Path: ${plural(walk.hops.length, 'hop')}`, walk.verdict ? el('span', { class: `verdict verdict-${walk.verdict}` }, walk.verdict) : null),
      walk.hops.length
        ? el('ol', { class: 'explain-hops', 'aria-label': 'Hops in order' }, walk.hops.map((hop, i) => hopItem(hop, i, path)))
        : el('p', { class: 'muted' }, 'The walk could not take a first step.'),
      el('h3', {}, 'Probe'),
      probeSection(data.probe),
    ].filter(Boolean));
  }

  /** Light the answer's path on the graph (again: after a flush redrew some of it), or nothing. */
  function refresh() {
    const showing = answer && !panel.hidden;
    if (!showing && !lit.size) return; // the usual flush: nothing to do
    const want = new Map(); // element id -> 'hop' | 'drop'
    if (showing) {
      const path = walkPath(model.hosts[answer.host], answer.data.walk);
      const drawn = path.nodes.map((id) => cy.getElementById(id)).filter((node) => node.nonempty());
      drawn.forEach((node, i) => {
        want.set(node.id(), 'hop');
        if (i > 0) drawn[i - 1].edgesWith(node).forEach((edge) => want.set(edge.id(), 'hop'));
      });
      if (path.stop && cy.getElementById(path.stop).nonempty()) want.set(path.stop, 'drop');
    }
    cy.batch(() => {
      for (const id of lit.keys()) {
        const ele = cy.getElementById(id);
        if (!want.has(id) && ele.nonempty()) ele.removeClass('explain-hop explain-drop');
      }
      for (const [id, how] of want) {
        const ele = cy.getElementById(id);
        setClass(ele, 'explain-hop', true);
        setClass(ele, 'explain-drop', how === 'drop');
      }
    });
    lit = want;
  }

  /** Pan (and zoom out, never in) so the lit path is in view, when some of it is not. */
  function bringIntoView() {
    const lit = cy.elements('.explain-hop, .explain-drop');
    if (lit.empty()) return;
    const seen = lit.renderedBoundingBox();
    if (seen.x1 >= 0 && seen.y1 >= 0 && seen.x2 <= cy.width() && seen.y2 <= cy.height()) return;
    const box = lit.boundingBox();
    const margin = 60;
    const zoom = Math.max(cy.minZoom(), Math.min(cy.zoom(), (cy.width() - 2 * margin) / Math.max(1, box.w), (cy.height() - 2 * margin) / Math.max(1, box.h)));
    const pan = { x: cy.width() / 2 - zoom * (box.x1 + box.w / 2), y: cy.height() / 2 - zoom * (box.y1 + box.h / 2) };
    cy.stop(true, true);
    cy.animate({ zoom, pan, duration: 300 });
  }

  function clear() {
    answer = null;
    progress.hidden = true;
    render();
    refresh();
    delete panel.dataset.state;
  }

  function showHop(index) {
    if (!answer) return;
    const h = model.hosts[answer.host];
    const { targets, shown } = walkPath(h, answer.data.walk).hops[index] ?? {};
    if (!targets?.length) return;
    const first = targets[0];
    // A folded namespace is opened by selecting its veth (selectElement opens its group).
    const id = cy.getElementById(first.id).empty() && first.type === 'ns' && h.folded.has(first.netns) ? h.folded.get(first.netns).veth : first.id;
    select(id, answer.host);
    const node = cy.getElementById(id).nonempty() ? cy.getElementById(id) : cy.getElementById(shown[0]);
    if (node.nonempty()) cy.animate({ center: { eles: node }, duration: 250 });
    for (const item of result.querySelectorAll('.hop')) item.classList.toggle('hop-current', item.dataset.hop === String(index));
  }

  // --- opening, and filling from the graph

  function open({ focus = true } = {}) {
    const wasHidden = panel.hidden;
    fillHosts();
    panel.hidden = false;
    openButton?.setAttribute('aria-expanded', 'true');
    if (wasHidden) {
      cy.resize();
      refresh();
    }
    if (!focus) return;
    const empty = ['host', 'source', 'destination'].find((name) => !inputs[name].value);
    (empty ? inputs[empty] : inputs.destination).focus();
  }

  function close() {
    panel.hidden = true;
    openButton?.setAttribute('aria-expanded', 'false');
    cy.resize();
    refresh(); // the path is lit only while the panel shows it
    openButton?.focus();
  }

  /** Fill one end from a namespace of host `host`, open the panel and focus what comes next. */
  function fill(end, host, netns) {
    open({ focus: false });
    if (inputs.host.value !== host) {
      // Another host: the question is asked there; an end named on the old host means nothing there.
      if (inputs.host.value) inputs[end === 'source' ? 'destination' : 'source'].value = '';
      if (![...inputs.host.options].some((o) => o.value === host)) inputs.host.append(el('option', { value: host }, host));
      inputs.host.value = host;
      fillNamespaces();
    }
    const h = model.hosts[host];
    if (end === 'source') {
      inputs.source.value = netns;
    } else {
      const { port } = splitPort(inputs.destination.value);
      inputs.destination.value = destinationName(h, netns) + (port === null ? '' : `:${port}`);
    }
    noErrors();
    const next = end === 'source' && !inputs.destination.value ? inputs.destination : end === 'destination' && !inputs.source.value ? inputs.source : submit;
    next.focus();
    if (next === inputs.destination) inputs.destination.setSelectionRange(inputs.destination.value.length, inputs.destination.value.length);
  }

  /** The graph menu's entries for a node (graph-menu.js `extraEntries`): a namespace's two. */
  function menuEntries(data) {
    if (data?.type !== 'namespace' || !data.netns) return [];
    return [
      { label: 'Explain from here', run: () => fill('source', data.host, data.netns) },
      { label: 'Explain to here', run: () => fill('destination', data.host, data.netns) },
    ];
  }

  // --- wiring

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    ask();
  });
  fillProtocols();
  inputs.host.addEventListener('change', fillNamespaces);
  q('#explain-clear').addEventListener('click', () => {
    clear();
    noErrors();
  });
  q('#explain-swap').addEventListener('click', () => {
    const swapped = swapEnds(inputs.source.value, inputs.destination.value);
    inputs.source.value = swapped.source;
    inputs.destination.value = swapped.destination;
  });
  q('#explain-close').addEventListener('click', close);
  openButton?.addEventListener('click', () => (panel.hidden ? open() : close()));
  result.addEventListener('click', (event) => {
    const row = event.target.closest('button[data-hop]');
    if (row) showHop(Number(row.dataset.hop));
  });
  panel.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape') return;
    event.stopPropagation(); // the page's Escape clears the search or closes the details
    close();
  });

  return {
    open,
    close,
    from: (host, netns) => fill('source', host, netns),
    to: (host, netns) => fill('destination', host, netns),
    refresh,
    clear,
    menuEntries,
    get answer() {
      return answer?.data ?? null;
    },
  };
}
