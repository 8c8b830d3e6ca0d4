// Long work on hosts (plan, apply, destroy: "operations") as it happens, from the socket's
// `operation.status` frames: a small live list over the graph, newest first. A running one shows
// how far it is (a progress bar and its text) once its agent reports it; pending and running ones
// get a Cancel button when the page may cancel (`cancel`). Finished ones leave after a while; a
// failed one stays, with its error, until dismissed.

import { el } from './dom.js';

const SHOWN_AT_MOST = 5;
const DONE_LINGER_MS = 8000; // a succeeded or cancelled operation stays this long
const LABEL = { pending: 'queued', running: 'running…', succeeded: 'done', failed: 'failed', cancelled: 'cancelled' };
const CANCELLABLE = new Set(['pending', 'running']);

/** Show how far a running operation is in its item's progress slot, updating it in place. */
function showProgress(slot, op) {
  if (op.status !== 'running' || !(op.total > 0)) {
    slot.replaceChildren();
    return;
  }
  let bar = slot.querySelector('progress');
  if (!bar) {
    bar = el('progress', { 'aria-label': `Progress of ${op.kind} on ${op.host}` });
    slot.replaceChildren(bar, el('span', { class: 'op-progress-text' }));
  }
  bar.max = op.total;
  bar.value = op.done;
  slot.querySelector('.op-progress-text').textContent = op.progress ?? `${op.done}/${op.total}`;
}

/**
 * The latest frames of operations no request here waits for yet: the answer to the request that
 * queued an operation may come after its frames (a fast plan or apply on a busy server), so a page
 * remembers them and takes the one it waits for when the answer comes. Only the latest `limit` are
 * kept: the rest are other people's operations.
 */
export class EarlyFrames {
  constructor(limit = 32) {
    this.limit = limit;
    this.frames = new Map(); // operation id -> its latest frame's operation
  }

  remember(op) {
    this.frames.delete(op.id);
    this.frames.set(op.id, op);
    if (this.frames.size > this.limit) this.frames.delete(this.frames.keys().next().value);
  }

  /** The latest frame of operation `id`, forgotten here; null when none came. */
  take(id) {
    const op = this.frames.get(id) ?? null;
    this.frames.delete(id);
    return op;
  }
}

/**
 * The list in `list`. `cancel(id)`: asks the API to cancel an operation and answers {status, data}
 * (static/js/api.js); absent, no Cancel buttons (viewers).
 */
export function createOperationsView(list, { cancel = null } = {}) {
  const operations = new Map(); // id -> {operation, timer}
  const cancelling = new Set(); // ids asked to cancel that have not ended yet
  const refusals = new Map(); // id -> why the API refused to cancel it

  function cancelButton(op) {
    if (!cancel || !CANCELLABLE.has(op.status)) return null;
    const asked = cancelling.has(op.id);
    return el(
      'button',
      {
        type: 'button',
        class: 'button button-quiet op-cancel',
        'data-cancel': op.id,
        'aria-label': `Cancel ${op.kind} on ${op.host}`,
        ...(asked ? { disabled: '' } : {}),
      },
      asked ? 'Cancelling…' : 'Cancel',
    );
  }

  function item(op) {
    return el(
      'li',
      { class: `operation op-${op.status}`, 'data-operation': op.id },
      el('span', { class: 'op-what' }, `${op.subject ?? op.kind} on ${op.host}`),
      ' ',
      el('span', { class: 'op-status' }, LABEL[op.status] ?? op.status),
      cancelButton(op),
      el('a', { href: `/api/v1/operations/${encodeURIComponent(op.id)}/`, class: 'op-link' }, 'details'),
      op.status === 'failed'
        ? el('button', { type: 'button', class: 'button button-quiet', 'data-dismiss': op.id, 'aria-label': 'Dismiss' }, '×')
        : null,
      el('span', { class: 'op-progress' }),
      op.error ? el('span', { class: 'op-error' }, op.error) : null,
      refusals.has(op.id) ? el('span', { class: 'op-error', role: 'alert' }, refusals.get(op.id)) : null,
    );
  }

  // An item is rebuilt only when what it shows beyond its progress changed: progress comes several
  // times a second, and a rebuilt Cancel button would lose the click or focus it was getting.
  const items = new Map(); // id -> {item, shape}

  function render() {
    const newest = [...operations.values()].reverse().slice(0, SHOWN_AT_MOST);
    const shown = newest.map(({ operation: op }) => {
      const shape = JSON.stringify([op.status, op.error, cancelling.has(op.id), refusals.get(op.id)]);
      let kept = items.get(op.id);
      if (kept?.shape !== shape) {
        kept = { item: item(op), shape };
        items.set(op.id, kept);
      }
      showProgress(kept.item.querySelector('.op-progress'), op);
      return kept.item;
    });
    for (const id of items.keys()) if (!operations.has(id)) items.delete(id);
    if (shown.length !== list.children.length || shown.some((node, i) => list.children[i] !== node)) {
      list.replaceChildren(...shown);
    }
    list.hidden = operations.size === 0;
  }

  function forget(id) {
    clearTimeout(operations.get(id)?.timer);
    operations.delete(id);
    render();
  }

  async function askToCancel(id) {
    cancelling.add(id);
    refusals.delete(id);
    render();
    const { status, data } = await cancel(id);
    if (status >= 400) {
      cancelling.delete(id);
      refusals.set(id, `Could not cancel: ${data?.message ?? status}`);
    }
    render();
  }

  list.addEventListener('click', (event) => {
    const dismiss = event.target.closest('[data-dismiss]')?.dataset.dismiss;
    if (dismiss) forget(dismiss);
    const cancelled = event.target.closest('[data-cancel]')?.dataset.cancel;
    if (cancelled && cancel) askToCancel(cancelled);
  });

  return {
    /** One `operation.status` frame's operation. */
    update(op) {
      if (!op?.id) return;
      const known = operations.get(op.id);
      // the answer to the request that queued it may come after its frames: never go back to pending
      if (op.status === 'pending' && known && known.operation.status !== 'pending') return;
      clearTimeout(known?.timer);
      // a new status goes first (re-inserted as the newest); progress keeps the item where it is
      if (known?.operation.status !== op.status) operations.delete(op.id);
      if (!CANCELLABLE.has(op.status)) cancelling.delete(op.id);
      const done = op.status === 'succeeded' || op.status === 'cancelled';
      operations.set(op.id, { operation: op, timer: done ? setTimeout(() => forget(op.id), DONE_LINGER_MS) : null });
      render();
    },
  };
}
