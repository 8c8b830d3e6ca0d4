// Where the user left every node, kept on the server per user and view (so a reload, or another
// browser, shows the same picture). The page embeds the saved positions (`topology-layout`); changes
// go back to /api/v1/topology/layouts/<view>/ in batches: PATCH for a few, PUT after a full re-layout.

import { api } from './api.js';

const SAVE_DELAY_MS = 600;
const KEEPALIVE_MAX = 60000; // bytes; browsers cap all keepalive bodies in flight at 64 KiB

export class SavedLayout {
  /** `config` is the embedded `{url, positions}`, or null where nothing is saved (the harness). */
  constructor(config) {
    this.url = config?.url ?? null;
    this.positions = new Map(Object.entries(config?.positions ?? {}).map(([id, [x, y]]) => [id, { x, y }]));
    this.changed = new Map();
    this.removed = new Set();
    this.replace = false;
    this.timer = null;
    this.saving = Promise.resolve();
    this.onError = () => {};
  }

  get(id) {
    return this.positions.get(id) ?? null;
  }

  set(id, { x, y }) {
    const p = { x, y }; // not rounded: a reload must put every node exactly where it was
    const held = this.positions.get(id);
    if (held && held.x === p.x && held.y === p.y) return;
    this.positions.set(id, p);
    this.changed.set(id, p);
    this.removed.delete(id);
    this.schedule();
  }

  remove(id) {
    if (!this.positions.delete(id)) return;
    this.changed.delete(id);
    this.removed.add(id);
    this.schedule();
  }

  /** Forget every saved position and keep these instead (a full re-layout). */
  replaceAll(entries) {
    this.positions.clear();
    this.changed.clear();
    this.removed.clear();
    this.replace = true;
    for (const [id, p] of entries) this.positions.set(id, { x: p.x, y: p.y });
    this.schedule();
  }

  schedule() {
    if (!this.url || this.timer) return;
    this.timer = setTimeout(() => this.flush(), SAVE_DELAY_MS);
  }

  /** Send what changed now; resolves once the server answered. */
  flush({ keepalive = false } = {}) {
    clearTimeout(this.timer);
    this.timer = null;
    if (!this.url || (!this.replace && !this.changed.size && !this.removed.size)) return this.saving;
    const pairs = (entries) => Object.fromEntries([...entries].map(([id, p]) => [id, [p.x, p.y]]));
    const body = this.replace
      ? { method: 'PUT', data: { positions: pairs(this.positions) } }
      : { method: 'PATCH', data: { positions: pairs(this.changed), remove: [...this.removed] } };
    this.replace = false;
    this.changed = new Map();
    this.removed = new Set();
    const size = JSON.stringify(body.data).length;
    this.saving = api(this.url, {
      method: body.method,
      body: body.data,
      keepalive: keepalive && size < KEEPALIVE_MAX, // browsers refuse larger keepalive bodies
    })
      .then(({ status, data }) => {
        if (status < 200 || status >= 300) this.onError(`${status} ${JSON.stringify(data).slice(0, 200)}`);
      })
      .catch((error) => this.onError(String(error)));
    return this.saving;
  }
}
