// The overlay checks of networks spanning hosts, kept fresh for the topology page.
//
// For every topology spanning hosts (GET /api/v1/topologies/: `span` not null) the watch reads its
// vxlan networks (GET /api/v1/networks/?topology=T&host=HOME) and each one's overlay check (GET
// /api/v1/networks/T.N/overlay/?host=HOME), and hands every answer to `onAnswer(topology, network,
// answer)` (answer null: the network or topology is gone). It reads a topology when it first sees
// it, when the page says something changed about it (a `desired.changed` or `operation.status`
// frame: refresh(name)), and every `pollMs` while any answer has findings (the check reads the
// hosts' saved states, which follow the kernel by a few seconds). Reads of one topology never
// overlap: calls during a read fold into one more read after it (api.js coalesced).
//
// No DOM: `api` and `timers` are passed in, so `node --test` drives it with fakes.

import { coalesced } from './api.js';

export const OVERLAY_POLL_MS = 5000;

/** Topologies spanning hosts in a GET /api/v1/topologies/ list: name -> home host. */
export function spanningTopologies(results) {
  const found = new Map();
  for (const t of results ?? []) if (t.span?.home) found.set(t.name, t.span.home);
  return found;
}

export class OverlayWatch {
  /**
   * `api(url)` answers {status, data} (static/js/api.js); `networksUrl` is the networks API
   * (/api/v1/networks/); `timers` has setTimeout and clearTimeout.
   */
  constructor({ api, networksUrl, onAnswer, pollMs = OVERLAY_POLL_MS, timers = globalThis }) {
    this.api = api;
    this.networksUrl = networksUrl;
    this.onAnswer = onAnswer;
    this.pollMs = pollMs;
    this.timers = timers;
    this.topologies = new Map(); // name -> {home, answers: Map network -> answer, read}
    this.timer = null;
  }

  /** The list of desired topologies changed: start watching new spanning ones, forget those gone. */
  setTopologies(results) {
    const wanted = spanningTopologies(results);
    for (const [name, t] of this.topologies) {
      if (wanted.get(name) === t.home) continue;
      this.topologies.delete(name);
      for (const network of t.answers.keys()) this.onAnswer(name, network, null);
    }
    const added = [];
    for (const [name, home] of wanted) {
      if (this.topologies.has(name)) continue;
      const t = { home, answers: new Map(), read: null };
      t.read = coalesced(() => this.read(name, t));
      this.topologies.set(name, t);
      added.push(name);
    }
    return Promise.all(added.map((name) => this.refresh(name)));
  }

  /** Something changed about topology `name`: read its overlays again (nothing if it spans no hosts). */
  refresh(name) {
    const t = this.topologies.get(name);
    return t ? t.read() : Promise.resolve();
  }

  /** The answers held now: [{topology, network, answer}]. */
  answers() {
    return [...this.topologies].flatMap(([topology, t]) => [...t.answers].map(([network, answer]) => ({ topology, network, answer })));
  }

  async read(name, t) {
    try {
      const query = new URLSearchParams({ topology: name, host: t.home, page_size: '1000' });
      const listed = await this.api(`${this.networksUrl}?${query}`);
      if (listed.status !== 200 || this.topologies.get(name) !== t) return;
      const networks = (listed.data?.results ?? []).filter((n) => n.driver === 'vxlan').map((n) => n.name);
      for (const network of [...t.answers.keys()]) {
        if (networks.includes(network)) continue;
        t.answers.delete(network);
        this.onAnswer(name, network, null);
      }
      await Promise.all(
        networks.map(async (network) => {
          const url = `${this.networksUrl}${encodeURIComponent(`${name}.${network}`)}/overlay/?${new URLSearchParams({ host: t.home })}`;
          const { status, data } = await this.api(url);
          if (status !== 200 || this.topologies.get(name) !== t) return; // kept as it was
          t.answers.set(network, data);
          this.onAnswer(name, network, data);
        }),
      );
    } catch (error) {
      console.warn(`switchboard: could not read the overlay of ${name}:`, error);
    } finally {
      this.schedulePoll();
    }
  }

  /** While any answer has findings, read those topologies again in `pollMs` (one timer at a time). */
  schedulePoll() {
    if (this.timer !== null || !this.withFindings().length) return;
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      for (const name of this.withFindings()) this.refresh(name);
    }, this.pollMs);
  }

  withFindings() {
    return [...this.topologies].filter(([, t]) => [...t.answers.values()].some((a) => !a.consistent)).map(([name]) => name);
  }
}
