// A topology file's errors as the API answers them (400 `fields` keyed by paths in the file, such
// as networks.front.subnet), listed with a "line N" button that selects that line of the textarea.

import { el } from './dom.js';
import { lineOfPath } from './yaml-lines.js';

const TOP_KEYS = ['name', 'networks', 'nodes', 'routes'];

/** Fill `list` with the errors of `data` (an API error answer) about the file in `textarea`. */
export function showFileErrors(list, textarea, status, data) {
  const body = data && typeof data === 'object' ? data : {};
  const fields = body.fields ?? { [body.error ?? 'error']: [body.message ?? `HTTP ${status}`] };
  list.replaceChildren(
    ...Object.entries(fields).flatMap(([field, messages]) =>
      [messages].flat().map((message) => {
        const line = field.includes('.') || TOP_KEYS.includes(field) ? lineOfPath(textarea.value, field) : null;
        return el(
          'li',
          {},
          line ? el('button', { type: 'button', class: 'link-button', 'data-line': line }, `line ${line}`) : null,
          line ? ': ' : '',
          `${field}: ${message}`,
        );
      }),
    ),
  );
  list.querySelector('[data-line]')?.focus();
}

/** A click on "line N" in `list` puts the cursor on that line of `textarea`, selected. */
export function linkLines(list, textarea) {
  list.addEventListener('click', (event) => {
    const line = Number(event.target.closest('[data-line]')?.dataset.line);
    if (!line) return;
    const lines = textarea.value.split('\n');
    const at = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    textarea.focus();
    textarea.setSelectionRange(at, at + (lines[line - 1]?.length ?? 0));
  });
}
