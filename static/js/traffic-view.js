// The Traffic layer of the topology graph: "talks to" edges (traffic.js) drawn over the wired graph
// while its toggle is on (kept in localStorage), brought in line with the model after every flush
// without moving anything, and removed when it is switched off. A host's "outside" node (servers no
// namespace of the host has) stands right of the host, or where the user dropped it.

import { el, storedFlag, storeFlag } from './dom.js';
import { TRAFFIC_KIND, trafficDiff, trafficElements, trafficFacts, trafficIds, trafficLabel } from './traffic.js';

const STORED_KEY = 'switchboard.topology.traffic';
const OUTSIDE_GAP = 80; // px right of the host box

/**
 * `toggle` is the checkbox; `onChange()` runs after the layer was switched (the page refreshes what
 * depends on it); `savedPosition(id)` is where the user left a node, if anywhere.
 */
export function createTrafficLayer({ cy, model, toggle, onChange = () => {}, savedPosition = () => null }) {
  let on = storedFlag(STORED_KEY);
  toggle.checked = on;

  function drawn() {
    const held = new Map();
    cy.elements('.traffic, .outside').forEach((ele) => held.set(ele.id(), ele.data()));
    return held;
  }

  function outsidePosition(host) {
    const hostNode = cy.getElementById(host);
    if (hostNode.empty()) return { x: 0, y: 0 };
    const box = hostNode.boundingBox({ includeLabels: false });
    return { x: box.x2 + OUTSIDE_GAP, y: box.y1 + box.h / 2 };
  }

  /** Bring the drawn traffic elements in line with the model (all gone while the layer is off). */
  function sync() {
    const wanted = on
      ? trafficElements(Object.values(model.hosts), (id) => cy.getElementById(id).nonempty())
      : { nodes: [], edges: [] };
    const { add, update, remove } = trafficDiff(drawn(), wanted);
    if (!add.length && !update.length && !remove.length) return;
    cy.batch(() => {
      for (const id of remove) cy.getElementById(id).remove();
      for (const { id, data, classes } of update) {
        const ele = cy.getElementById(id);
        ele.data(data);
        if (classes.includes('traffic-outside') !== ele.hasClass('traffic-outside')) ele.toggleClass('traffic-outside');
      }
      const nodes = add.filter((spec) => spec.data.type === 'outside');
      cy.add(nodes.map((spec) => ({ group: 'nodes', ...spec, position: savedPosition(spec.data.id) ?? outsidePosition(spec.data.host) })));
      cy.add(add.filter((spec) => spec.data.type === 'traffic').map((spec) => ({ group: 'edges', ...spec })));
    });
  }

  function setOn(value) {
    if (on === value) return;
    on = value;
    toggle.checked = value;
    storeFlag(STORED_KEY, value);
    sync();
    onChange();
  }

  toggle.addEventListener('change', () => setOn(toggle.checked));
  // Hovering an edge shows its numbers as the graph's tooltip.
  cy.on('mouseover', 'edge.traffic', (event) => {
    cy.container().title = event.target.data('title');
  });
  cy.on('mouseout', 'edge.traffic', () => {
    cy.container().removeAttribute('title');
  });

  /** The details panel of a traffic edge or outside node id: {title, body}, or null when not one. */
  function details(id, host) {
    const h = model.hosts[host];
    if (id === trafficIds.outside(host)) {
      const talking = Object.values(h?.state[TRAFFIC_KIND] ?? {}).filter((t) => t.server === '');
      return {
        title: 'outside the host',
        body: [
          el('p', { class: 'panel-sub' }, `host ${host} · addresses no namespace of this host has`),
          el('ul', { class: 'plain' }, talking.map((t) => el('li', {}, `${t.client} → ${t.server_address} ${trafficLabel(t)}`))),
        ],
      };
    }
    const prefix = trafficIds.edge(host, '');
    if (!id.startsWith(prefix)) return null;
    const t = h?.state[TRAFFIC_KIND]?.[id.slice(prefix.length)];
    if (!t) return { title: 'conversation ended', body: [el('p', { class: 'muted' }, 'The agent no longer sees this conversation in conntrack.')] };
    return {
      title: `${t.client} → ${t.server || t.server_address} ${trafficLabel(t)}`,
      body: [
        el('p', { class: 'panel-sub' }, `talks to · host ${host} · from conntrack, read every 2 s`),
        el('dl', { class: 'facts' }, trafficFacts(t).flatMap(([label, text]) => [el('dt', {}, label), el('dd', {}, text)])),
      ],
    };
  }

  return {
    get on() {
      return on;
    },
    setOn,
    sync,
    details,
  };
}
