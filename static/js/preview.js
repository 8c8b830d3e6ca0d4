// The connectivity preview beside a plan (GET /api/v1/topologies/<name>/preview/): who will reach
// whom once the topology is applied, against what its host has of it now, and which nodes the
// change interrupts. Readable without colour: each line starts with its sign (+ gained, − lost,
// ! interrupted, ~ recreated) and says in words what it is.

import { el, plural } from './dom.js';

const HOW = { local: 'same namespace', L2: 'L2, same network', L3: 'L3, routed' };
const MARK = { gained: 'plan-add', lost: 'plan-remove', interrupted: 'plan-change', recreated: 'plan-change' };

function pairName(pair) {
  return `${pair.source} → ${pair.target} ${pair.address} (${pair.network})`;
}

function more(kind, shown, total, noun) {
  return total > shown ? [{ kind, text: `  … and ${plural(total - shown, noun)} more` }] : [];
}

/**
 * The preview as lines of text, each {kind, text}; kind is gained, lost, interrupted, recreated,
 * same (no change in who reaches whom) or note.
 */
export function previewLines(data) {
  const counts = data.counts ?? {};
  const lines = [];
  for (const pair of data.gained) {
    const path = pair.how === 'L3' ? `: ${pair.path.join(' → ')}` : '';
    lines.push({ kind: 'gained', text: `+ ${pairName(pair)} becomes reachable (${HOW[pair.how] ?? pair.how}${path})` });
  }
  lines.push(...more('gained', data.gained.length, counts.gained ?? 0, 'pair'));
  for (const pair of data.lost) {
    lines.push({ kind: 'lost', text: `− ${pairName(pair)} is no longer reachable: ${pair.reason ?? 'unknown why'}` });
  }
  lines.push(...more('lost', data.lost.length, counts.lost ?? 0, 'pair'));
  if (!data.gained.length && !data.lost.length) lines.push({ kind: 'same', text: 'No change in who reaches whom.' });
  for (const item of data.interrupted) {
    lines.push({ kind: 'interrupted', text: `! ${item.node}: live connections break (${item.why})` });
  }
  lines.push(...more('interrupted', data.interrupted.length, counts.interrupted ?? 0, 'node'));
  for (const item of data.recreated) {
    const owner = item.node ? `${item.node} on ${item.network}` : item.network;
    lines.push({ kind: 'recreated', text: `~ ${item.kind} of ${owner} is recreated (${item.why})` });
  }
  lines.push(...more('recreated', data.recreated.length, counts.recreated ?? 0, 'object'));
  return lines;
}

/** One sentence above the lines: how many pairs reach each other now and after. */
export function previewSummary(data) {
  const now = data.applied ? `${plural(data.pairs_before, 'pair')} of nodes reachable now` : 'Nothing applied yet';
  const routing = data.host_forwards ? '' : ' (taking the host not to route between networks: netcore never turns IP forwarding on)';
  return `${now}; ${plural(data.pairs_after, 'pair')} after applying${routing}.`;
}

/** Show the preview (or why there is none) in `container`: a status line and the lines. */
export function renderPreview(container, { status, data }) {
  const text = container.querySelector('[data-preview="status"]');
  const list = container.querySelector('[data-preview="lines"]');
  if (status !== 200) {
    text.textContent = `No connectivity preview: ${data?.message ?? `the server answered ${status}`}`;
    list.replaceChildren();
    return;
  }
  text.textContent = previewSummary(data);
  list.replaceChildren(...previewLines(data).map((line) => el('span', { class: MARK[line.kind] ?? '' }, `${line.text}\n`)));
}

let latest = 0; // the newest request: an older answer arriving late is not shown

/** Fetch the preview at `url` and show it in `container`. */
export async function loadPreview(container, url) {
  const asked = ++latest;
  container.hidden = false;
  container.querySelector('[data-preview="status"]').textContent = 'Working out who will reach whom…';
  container.querySelector('[data-preview="lines"]').replaceChildren();
  let answer;
  try {
    const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    const type = response.headers.get('content-type') ?? '';
    answer = { status: response.status, data: type.includes('json') ? await response.json() : null };
  } catch (error) {
    answer = { status: 0, data: { message: `the request failed (${error.message})` } };
  }
  if (asked === latest) renderPreview(container, answer);
}
