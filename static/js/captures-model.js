// The captures pages' pure parts, checked by `node --test static/js/tests/`: the start form's values
// as the API's request, the live table's window of rows (the DOM keeps at most the last
// ROW_LIMIT rows, so thousands of packets never freeze the page), a capture's status and progress
// in words, and the sizes and times shown.

export const ROW_LIMIT = 1000; // rows drawn at most; older ones leave the table (the file keeps them all)

/** Interface names typed as "eth0, eth1" or "eth0 eth1", without blanks or repeats, in order. */
export function splitNames(text) {
  return [...new Set(String(text ?? '').split(/[\s,]+/).filter(Boolean))];
}

/** A number field's value: the number it reads as, else the text as typed (the API names the field). */
function numberOr(text) {
  const trimmed = String(text ?? '').trim();
  return /^\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : trimmed;
}

/**
 * The POST /api/v1/captures/ body from the form: {host, namespace, checked (interface names ticked),
 * typed (names typed), filter, count, duration}.
 */
export function captureRequest({ host, namespace, checked = [], typed = '', filter = '', count, duration }) {
  return {
    host,
    namespace: String(namespace ?? '').trim(),
    interfaces: [...new Set([...checked, ...splitNames(typed)])],
    filter: String(filter ?? '').trim(),
    count: numberOr(count),
    duration: numberOr(duration),
  };
}

/**
 * The rows the table shows: new rows are those after the last frame number shown (the socket may
 * repeat rows it sent on connect), and past `limit` the oldest leave. `add(rows)` answers {added,
 * removed}: the rows to append, and how many to take from the top.
 */
export class RowWindow {
  constructor(limit = ROW_LIMIT) {
    this.limit = limit;
    this.last = 0; // the highest frame number taken
    this.size = 0; // rows shown now
    this.seen = 0; // rows taken since the page opened
  }

  add(rows) {
    const fresh = rows.filter((row) => row.number > this.last).sort((a, b) => a.number - b.number);
    if (fresh.length) this.last = fresh.at(-1).number;
    this.seen += fresh.length;
    const added = fresh.slice(-this.limit);
    const removed = Math.max(0, this.size + added.length - this.limit);
    this.size += added.length - removed;
    return { added, removed };
  }

  /** Says what the table holds when older rows left it, else ''. */
  note(kept) {
    if (kept > this.size) return `Showing the last ${this.size} of ${kept} rows kept; the pcap has every packet.`;
    return '';
  }
}

const ENDINGS = {
  count: 'reached its packet count',
  duration: 'reached its duration',
  stopped: 'stopped',
  error: 'ended with an error',
};

/** A capture's status in words, e.g. "Running", "Done: reached its packet count". */
export function statusText(capture) {
  const name = capture.status.charAt(0).toUpperCase() + capture.status.slice(1);
  if (capture.status === 'done' && ENDINGS[capture.reason]) return `${name}: ${ENDINGS[capture.reason]}`;
  return name;
}

/**
 * How far a capture is: {value, max, text}, e.g. "120 of 1000 packets · 42 s left" while it runs
 * (`now`: epoch milliseconds); "3 packets, 1 dropped · 2.1 KiB" once it ended.
 */
export function progress(capture, now = Date.now()) {
  const packets = capture.packets ?? 0;
  const value = Math.min(packets, capture.count);
  if (capture.status === 'running' && capture.started) {
    const elapsed = (now - Date.parse(capture.started)) / 1000;
    const left = Math.max(0, Math.ceil(capture.duration - elapsed));
    return { value, max: capture.count, text: `${packets} of ${capture.count} packets · ${left} s left` };
  }
  if (capture.status === 'pending') return { value, max: capture.count, text: 'waiting for the agent to start it' };
  const dropped = capture.dropped ? `, ${capture.dropped} dropped` : '';
  return { value, max: capture.count, text: `${packets} packet${packets === 1 ? '' : 's'}${dropped} · ${sizeText(capture.bytes ?? 0)}` };
}

/** Bytes for people: "512 B", "2.1 KiB", "3.4 MiB". */
export function sizeText(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** A row's time (epoch seconds) as the time of day to the millisecond, in UTC: "12:52:42.291". */
export function rowTime(seconds) {
  const date = new Date(seconds * 1000);
  return Number.isNaN(date.getTime()) ? String(seconds) : date.toISOString().slice(11, 23);
}

/** A decode node's one line: "ip.src: 198.18.0.1", or its name alone for a layer or subtree. */
export function nodeLabel(node) {
  if (node.value === undefined) return node.name;
  return node.name ? `${node.name}: ${node.value}` : node.value;
}

/** Hex bytes "0011aabb…" as lines of 16 bytes with their offset: "0000  00 11 aa bb …". */
export function hexLines(hex) {
  const lines = [];
  for (let at = 0; at < hex.length; at += 32) {
    const bytes = hex.slice(at, at + 32).match(/../g) ?? [];
    lines.push(`${(at / 2).toString(16).padStart(4, '0')}  ${bytes.join(' ')}`);
  }
  return lines;
}
