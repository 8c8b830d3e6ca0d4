// A link's shaping from the topology page (operators): a rate limit (tbf), or delay, jitter and loss
// where the host's kernel has netem. The form PUTs the shaping API, which queues an operation; the
// kernel's qdisc event brings the result to the graph (the link's `shaping`), and a failed operation
// (a kernel without netem, a link gone meanwhile) is said beside the link.

import { api } from './api.js';
import { openForm } from './forms.js';

export const SHAPING_FIELDS = ['rate', 'burst', 'queue_ms', 'delay', 'jitter', 'loss'];
const POLL_MS = 300;
const POLL_LIMIT = 100; // 30 s: a shape operation waits behind an apply at most that long here
const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

/** The shaping API's URL of one link. */
export function shapingUrl(host, netns, link) {
  return `/api/v1/topology/shaping/${[host, netns, link].map(encodeURIComponent).join('/')}/`;
}

/** The form's values as the API's body: fields left empty are left out; queue_ms a number. */
export function shapingBody(values) {
  const body = {};
  for (const name of SHAPING_FIELDS) {
    const value = String(values[name] ?? '').trim();
    if (!value) continue;
    body[name] = name === 'queue_ms' && /^\d+$/.test(value) ? Number(value) : value;
  }
  return body;
}

/** The form's fields, filled with what the link has now (netcore's Shaping, or null). */
export function shapingFields(shaping) {
  const ms = (us) => (us ? `${us / 1000}ms` : '');
  return [
    { name: 'rate', label: 'Rate limit', value: shaping?.rate ? String(shaping.rate) : '', placeholder: '10mbit', hint: 'Bits per second, or 800kbit, 10mbit, 1gbit. Alone, a token bucket (tbf).' },
    { name: 'burst', label: 'Burst', value: shaping?.kind === 'tbf' && shaping.burst ? String(shaping.burst) : '', placeholder: 'chosen from the rate', hint: 'Bytes sent at line rate before the limit bites: 32kb. At least one frame.' },
    { name: 'queue_ms', label: 'Queue (ms)', type: 'number', value: '', placeholder: '50', hint: 'How long a packet may wait behind the limit before it is dropped.' },
    { name: 'delay', label: 'Delay', value: ms(shaping?.delay_us), placeholder: '20ms', hint: 'Needs the netem qdisc in the host’s kernel.' },
    { name: 'jitter', label: 'Jitter', value: ms(shaping?.jitter_us), placeholder: '5ms', hint: 'At most the delay.' },
    { name: 'loss', label: 'Loss (%)', value: shaping?.loss_ppm ? String(shaping.loss_ppm / 10000) : '', placeholder: '0.5', hint: 'Percent of packets dropped.' },
  ];
}

/** Follow a queued operation until it ends: {ok: true} or {ok: false, error}. */
async function outcome(url) {
  for (let i = 0; i < POLL_LIMIT; i += 1) {
    const { status, data } = await api(url);
    if (status !== 200) return { ok: false, error: `could not follow the operation (HTTP ${status})` };
    if (FINISHED.has(data.status)) return data.status === 'succeeded' ? { ok: true } : { ok: false, error: data.error || data.status };
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return { ok: false, error: 'the operation has not ended yet: see Operations' };
}

/**
 * Ask for a link's shaping in a form, then follow the operation. `report(text, ok)` says how it
 * went (ok null: still working). Resolves when done or closed.
 */
export async function shapeLink({ host, netns, link, shaping, report }) {
  const queued = await openForm({
    title: `Shape ${link}`,
    intro: `Shapes what ${link} (namespace ${netns}, host ${host}) sends. Replaces any shaping it has.`,
    fields: shapingFields(shaping),
    submitLabel: 'Apply shaping',
    onSubmit: (values) => api(shapingUrl(host, netns, link), { method: 'PUT', body: shapingBody(values) }),
  });
  if (queued) await follow(queued, `Shaping ${link}…`, report);
}

/** Take a link's shaping off, then follow the operation. */
export async function unshapeLink({ host, netns, link, report }) {
  const { status, data } = await api(shapingUrl(host, netns, link), { method: 'DELETE' });
  if (status !== 202) {
    report(data?.message ?? `Could not remove the shaping (HTTP ${status}).`, false);
    return;
  }
  await follow(data, `Removing the shaping of ${link}…`, report);
}

async function follow(queued, working, report) {
  report(working, null);
  const done = await outcome(queued.url);
  report(done.ok ? 'Done: the graph shows the kernel’s shaping.' : `Failed: ${done.error}`, done.ok);
}
