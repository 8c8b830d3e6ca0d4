// Long work on hosts (plan, apply, destroy: "operations") as it happens, from the socket's
// `operation.status` frames: a small live list over the graph, newest first. Finished ones leave
// after a while; a failed one stays, with its error, until dismissed.

import { el } from './dom.js';

const SHOWN_AT_MOST = 5;
const DONE_LINGER_MS = 8000; // a succeeded or cancelled operation stays this long
const LABEL = { pending: 'queued', running: 'running…', succeeded: 'done', failed: 'failed', cancelled: 'cancelled' };

export function createOperationsView(list) {
  const operations = new Map(); // id -> {operation, timer}

  function render() {
    const newest = [...operations.values()].reverse().slice(0, SHOWN_AT_MOST);
    list.replaceChildren(
      ...newest.map(({ operation: op }) =>
        el(
          'li',
          { class: `operation op-${op.status}`, 'data-operation': op.id },
          el('span', { class: 'op-what' }, `${op.kind} on ${op.host}`),
          ' ',
          el('span', { class: 'op-status' }, LABEL[op.status] ?? op.status),
          op.error ? el('span', { class: 'op-error' }, op.error) : null,
          el('a', { href: `/api/v1/operations/${encodeURIComponent(op.id)}/`, class: 'op-link' }, 'details'),
          op.status === 'failed'
            ? el('button', { type: 'button', class: 'button button-quiet', 'data-dismiss': op.id, 'aria-label': 'Dismiss' }, '×')
            : null,
        ),
      ),
    );
    list.hidden = operations.size === 0;
  }

  function forget(id) {
    clearTimeout(operations.get(id)?.timer);
    operations.delete(id);
    render();
  }

  list.addEventListener('click', (event) => {
    const id = event.target.closest('[data-dismiss]')?.dataset.dismiss;
    if (id) forget(id);
  });

  return {
    /** One `operation.status` frame's operation. */
    update(op) {
      if (!op?.id) return;
      clearTimeout(operations.get(op.id)?.timer);
      operations.delete(op.id); // re-inserted: the newest change goes first
      const done = op.status === 'succeeded' || op.status === 'cancelled';
      operations.set(op.id, { operation: op, timer: done ? setTimeout(() => forget(op.id), DONE_LINGER_MS) : null });
      render();
    },
  };
}
