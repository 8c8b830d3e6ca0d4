// The topology graph's context menu (right-click, or Shift+F10 / the menu key on the selected
// element): what an operator can change of a desired topology from where it is drawn. A bridge a
// desired topology made offers "Add node on <network>…"; a node's namespace offers attaching,
// detaching and deleting it. The graph element is mapped to its desired object through the owner
// alias netcore gives everything it creates (netcore/names.py: "switchboard:<topology>:<role>:…");
// anything else is read-only and gets no menu, and viewers get none at all. Edits go through
// topology-edits.js; nothing is applied from here: the notice links to the plan on the Networks page.
// The page may add entries of its own for any node (`extraEntries`: a namespace's "Explain from
// here" / "Explain to here", explain.js), listed before the edits. A namespace offers "Capture
// here…" and an interface "Capture on this interface…": the Captures page's form, filled in.

import { api } from './api.js';
import { el } from './dom.js';
import { parseOwnerAlias } from './links.js';
import { groupBridge } from './model.js';
import { TopologyEditor } from './topology-edits.js';

/**
 * The desired node whose namespace is `netns`, from its lo's owner alias: {topology, node,
 * networks}; its networks are those of the host-side veths marked with its name.
 */
function desiredNode(h, netns) {
  const tag = [...(h.nsLinks.get(netns) ?? [])].map((id) => parseOwnerAlias(h.links.get(id).alias)).find((t) => t?.role === 'node');
  if (!tag?.node || !h.desired.has(tag.topology)) return null;
  const networks = new Set();
  for (const link of h.links.values()) {
    const own = parseOwnerAlias(link.alias);
    if (own?.role === 'veth' && own.topology === tag.topology && own.node === tag.node && own.network) networks.add(own.network);
  }
  return { kind: 'node', topology: tag.topology, node: tag.node, networks: [...networks].sort() };
}

/**
 * What a graph element (its data: type, id, netns, bridge) stands for in a desired topology of
 * host `h`: {kind: 'network', topology, network} for a bridge (or its folded endpoints), {kind:
 * 'node', topology, node, networks} for a node's namespace or one of its interfaces, else null.
 */
export function desiredTarget(h, data) {
  if (!h) return null;
  if (data.type === 'group' || (data.type === 'link' && h.links.get(data.id)?.kind === 'bridge')) {
    const tag = parseOwnerAlias(h.links.get(data.type === 'group' ? data.bridge ?? groupBridge(data.id) : data.id)?.alias);
    return tag?.role === 'bridge' && tag.network && h.desired.has(tag.topology)
      ? { kind: 'network', topology: tag.topology, network: tag.network }
      : null;
  }
  if (data.type === 'namespace' || data.type === 'link') return data.netns ? desiredNode(h, data.netns) : null;
  return null;
}

const CAPTURES_URL = '/captures/';

/** A namespace's or an interface's capture entry: [{label, run}] (opens the Captures page's form). */
function captureEntries(model, data) {
  if ((data.type !== 'namespace' && data.type !== 'link') || !data.netns) return [];
  const params = { host: data.host, namespace: data.netns };
  if (data.type === 'link') {
    const name = model.hosts[data.host]?.links.get(data.id)?.name;
    if (!name) return [];
    params.interface = name;
  }
  const url = `${CAPTURES_URL}?${new URLSearchParams(params)}`;
  return [{ label: data.type === 'link' ? 'Capture on this interface…' : 'Capture here…', run: () => window.location.assign(url) }];
}

/** The menu's entries for a target: [label, action name, argument]. */
function entries(target) {
  if (target.kind === 'network') return [[`Add node on ${target.network}…`, 'addNode', target.network]];
  return [
    ['Attach to network…', 'attach'],
    ...target.networks.map((w) => [`Detach from ${w}`, 'detach', w]),
    ['Delete node', 'deleteNode'],
  ];
}

/**
 * Wire the menu to the graph. `config` is the page's `topology-edit` ({can_operate, networks_url})
 * and `desiredUrl` the desired topologies' API; nothing is wired for viewers. `extraEntries(node)`
 * answers the page's own entries for a node: [{label, run}] (run when chosen).
 */
export function createGraphMenu({ cy, model, config, desiredUrl, menu, notice, extraEntries = null }) {
  if (!config?.can_operate) return;
  const edits = Boolean(desiredUrl);
  const area = cy.container();
  let opened = null; // {host, target, before: what had the focus}

  function close({ refocus = false } = {}) {
    if (refocus && opened?.before?.isConnected) opened.before.focus();
    menu.hidden = true;
    opened = null;
  }

  function open(node, at) {
    const { host } = node.data();
    const target = edits ? desiredTarget(model.hosts[host], node.data()) : null;
    const extra = [...(extraEntries?.(node) ?? []), ...captureEntries(model, node.data())];
    if (!target && !extra.length) return false;
    opened = { host, target, extra, before: opened?.before ?? document.activeElement };
    let title = `Namespace ${node.data('netns') ?? node.id()}`;
    if (target) title = target.kind === 'network' ? `Network ${target.network} of ${target.topology}` : `Node ${target.node} of ${target.topology}`;
    menu.setAttribute('aria-label', title);
    const items = [...extra.map((entry, i) => [entry.label, 'extra', String(i)]), ...(target ? entries(target) : [])];
    menu.replaceChildren(
      ...items.map(([label, action, argument]) =>
        el('li', { role: 'none' }, el('button', { type: 'button', role: 'menuitem', tabindex: '-1', 'data-action': action, 'data-argument': argument ?? '' }, label)),
      ),
    );
    menu.hidden = false;
    const x = Math.min(at.x, area.clientWidth - menu.offsetWidth - 4);
    const y = Math.min(at.y, area.clientHeight - menu.offsetHeight - 4);
    menu.style.left = `${area.offsetLeft + Math.max(0, x)}px`;
    menu.style.top = `${area.offsetTop + Math.max(0, y)}px`;
    menu.querySelector('button').focus();
    return true;
  }

  function say(...parts) {
    notice.replaceChildren(...parts);
    notice.hidden = false;
  }

  async function run(action, argument) {
    const { host, target, extra } = opened;
    close();
    if (action === 'extra') {
      extra[Number(argument)]?.run();
      return;
    }
    const url = `${desiredUrl}${encodeURIComponent(target.topology)}/?${new URLSearchParams({ host })}`;
    const { status, data } = await api(url);
    if (status !== 200) {
      say(`Topology ${target.topology} could not be read: ${data?.message ?? status}`);
      return;
    }
    const plan = `${config.networks_url}#${host}/${target.topology}/plan`;
    const editor = new TopologyEditor(data, {
      onChange: (detail, what) =>
        say(`${what} in ${detail.name} — not applied yet. `, el('a', { href: plan }, 'Review the plan and apply it')),
    });
    if (action === 'addNode') await editor.addNode({ network: argument });
    else if (action === 'attach') await editor.attach(target.node);
    else {
      const confirmText = action === 'deleteNode' ? `Delete node ${target.node} from ${target.topology}?` : null;
      if (confirmText && !window.confirm(confirmText)) return;
      const error = action === 'deleteNode' ? await editor.deleteNode(target.node) : await editor.detach(target.node, argument);
      if (error) say(error);
    }
  }

  cy.on('cxttap', 'node', (event) => {
    const node = event.target;
    if (!node.selected()) {
      cy.elements(':selected').unselect();
      node.select();
    }
    if (!open(node, event.renderedPosition)) close();
  });
  cy.on('tap viewport', () => close());
  area.addEventListener('contextmenu', (event) => event.preventDefault()); // the graph's own menu instead

  document.addEventListener('keydown', (event) => {
    const wantsMenu = event.key === 'ContextMenu' || (event.shiftKey && event.key === 'F10');
    if (!wantsMenu || event.target.closest('input, textarea, select, dialog, .context-menu')) return;
    const node = cy.nodes(':selected').first();
    if (node.empty()) return;
    event.preventDefault();
    const p = node.renderedPosition();
    open(node, { x: p.x, y: p.y });
  });

  menu.addEventListener('keydown', (event) => {
    const items = [...menu.querySelectorAll('[role="menuitem"]')];
    const at = items.indexOf(document.activeElement);
    const to = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: items.length - 1 }[event.key];
    if (to !== undefined) {
      event.preventDefault();
      items[(to + items.length) % items.length].focus();
    } else if (event.key === 'Escape' || event.key === 'Tab') {
      event.preventDefault();
      event.stopPropagation(); // the page's Escape would also close the details panel
      close({ refocus: true });
    }
  });
  menu.addEventListener('click', (event) => {
    const item = event.target.closest('[role="menuitem"]');
    if (item && opened) run(item.dataset.action, item.dataset.argument || null);
  });
  document.addEventListener('pointerdown', (event) => {
    if (!menu.hidden && !menu.contains(event.target) && !area.contains(event.target)) close();
  });
}
