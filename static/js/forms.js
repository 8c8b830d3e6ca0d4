// Small forms in a modal <dialog>: labelled inputs, Enter submits, Escape closes, focus on the first
// field and, after an error, on the first field in error. The API's errors go under their field
// (mapErrors: the `fields` keys of a 400 are the request body's field names), the rest at the top;
// nothing typed is lost on error.

import { el } from './dom.js';

/** {"networks": {"front": {"address": ["…"]}}} -> [["networks.front.address", ["…"]]]; lists stay. */
function flatten(fields, prefix = '') {
  return Object.entries(fields ?? {}).flatMap(([key, value]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value && typeof value === 'object' && !Array.isArray(value)) return flatten(value, path);
    return [[path, (Array.isArray(value) ? value : [value]).map(String)]];
  });
}

/**
 * The form field an error key belongs to, among `names`: the field of that name, else the
 * longest field name the key is inside ("ports[0]" -> "ports", "networks.front.address" ->
 * "networks.front"), else the first field inside the key ("networks" -> "networks.front"), else null.
 */
export function fieldOf(key, names) {
  if (names.includes(key)) return key;
  const outer = names.filter((name) => key.startsWith(`${name}.`) || key.startsWith(`${name}[`));
  if (outer.length) return outer.reduce((a, b) => (b.length > a.length ? b : a));
  return names.find((name) => name.startsWith(`${key}.`) || name.startsWith(`${key}[`)) ?? null;
}

/**
 * An API error answer as the form shows it: `fields` (field name -> messages) and `general`
 * (messages for the top of the form: unknown keys, prefixed with the key, and errors of no field).
 */
export function mapErrors(status, data, names) {
  const fields = new Map();
  const general = [];
  const add = (key, messages) => {
    const name = key ? fieldOf(key, names) : null;
    if (name === null) {
      general.push(...messages.map((message) => (key && key !== 'non_field_errors' ? `${key}: ${message}` : message)));
      return;
    }
    fields.set(name, [...(fields.get(name) ?? []), ...messages]);
  };
  const body = data && typeof data === 'object' ? data : {};
  const entries = flatten(body.fields);
  if (entries.length) entries.forEach(([key, messages]) => add(key, messages));
  else if (status === 403) general.push(body.message ?? 'Only operators may change topologies.');
  else general.push(body.message ?? (typeof data === 'string' && data ? data.slice(0, 200) : `The server answered ${status}.`));
  return { fields, general };
}

let formCount = 0;

function inputFor(field, id, describedBy) {
  const common = { id, name: field.name, 'aria-describedby': describedBy };
  if (field.type === 'select') {
    const select = el('select', common, field.options.map(([value, label]) => el('option', { value }, label)));
    select.value = field.value ?? field.options[0]?.[0] ?? '';
    return select;
  }
  if (field.type === 'checkbox') return el('input', { ...common, type: 'checkbox', checked: Boolean(field.value) });
  if (field.type === 'textarea') {
    const area = el('textarea', { ...common, rows: String(field.rows ?? 12), class: 'mono', spellcheck: 'false' });
    if (field.placeholder) area.placeholder = field.placeholder;
    area.value = field.value ?? '';
    return area;
  }
  const attrs = { ...common, type: field.type ?? 'text', autocomplete: 'off', spellcheck: 'false' };
  if (field.placeholder) attrs.placeholder = field.placeholder;
  if (field.required) attrs.required = '';
  const input = el('input', attrs);
  input.value = field.value ?? '';
  return input;
}

function fieldRow(field, prefix) {
  const id = `${prefix}-${field.name.replace(/[^a-zA-Z0-9_-]/g, '-')}`;
  const hint = field.hint ? el('p', { class: 'hint', id: `${id}-hint` }, field.hint) : null;
  const error = el('p', { class: 'field-error', id: `${id}-error`, hidden: '' });
  const input = inputFor(field, id, [hint && `${id}-hint`, `${id}-error`].filter(Boolean).join(' '));
  const label = el('label', { for: id }, field.label);
  const row =
    field.type === 'checkbox'
      ? el('div', { class: 'field field-check', 'data-field': field.name }, el('span', { class: 'check' }, input, label), hint, error)
      : el('div', { class: 'field', 'data-field': field.name }, label, input, hint, error);
  return { row, input, error };
}

/**
 * Open a form; resolves with what `onSubmit` answered on success (a 2xx {status, data}: its data),
 * or null when the user closed it. `fields`: [{name, label, type ('text', 'number', 'checkbox',
 * 'select', 'textarea'), value, options ([[value, label]] for a select), hint, placeholder, required,
 * showWhen ({name, value}: shown only while that field has that value, or one of a list of values)}]. `onSubmit(values)`
 * gets {name: value} (text trimmed, checkbox boolean) of the fields shown, and answers {status, data}.
 */
export function openForm({ title, intro = null, fields, submitLabel = 'Save', onSubmit }) {
  formCount += 1;
  const prefix = `form${formCount}`;
  const rows = new Map(fields.map((field) => [field.name, { field, ...fieldRow(field, prefix) }]));
  const general = el('div', { class: 'form-errors', role: 'alert', tabindex: '-1', hidden: '' });
  const submit = el('button', { type: 'submit', class: 'button button-primary' }, submitLabel);
  const cancel = el('button', { type: 'button', class: 'button' }, 'Cancel');
  const form = el(
    'form',
    { novalidate: '' },
    el('h2', { id: `${prefix}-title` }, title),
    intro ? el('p', { class: 'hint' }, intro) : null,
    general,
    [...rows.values()].map(({ row }) => row),
    el('div', { class: 'button-row' }, submit, cancel),
  );
  const dialog = el('dialog', { class: 'form-dialog', 'aria-labelledby': `${prefix}-title` }, form);
  const opener = document.activeElement;

  const shown = ({ field }) => {
    if (!field.showWhen) return true;
    const value = rows.get(field.showWhen.name)?.input.value;
    const wanted = field.showWhen.value;
    return Array.isArray(wanted) ? wanted.includes(value) : value === wanted;
  };
  const refreshShown = () => rows.forEach((entry) => (entry.row.hidden = !shown(entry)));
  const values = () =>
    Object.fromEntries(
      [...rows.values()].filter(shown).map(({ field, input }) => [field.name, field.type === 'checkbox' ? input.checked : input.value.trim()]),
    );

  function showErrors({ fields: byField, general: messages }) {
    for (const [name, { input, error }] of rows) {
      const mine = byField.get(name) ?? [];
      error.textContent = mine.join(' ');
      error.hidden = mine.length === 0;
      if (mine.length) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
    }
    general.replaceChildren(...messages.map((message) => el('p', {}, message)));
    general.hidden = messages.length === 0;
    const first = [...rows.values()].find(({ field }) => byField.has(field.name));
    (first ? first.input : general).focus();
  }

  return new Promise((resolve) => {
    let result = null;
    form.addEventListener('change', refreshShown);
    form.addEventListener('keydown', (event) => {
      // Enter submits from any field (a checkbox or select too); a button does its own thing.
      if (event.key === 'Enter' && !event.target.matches('button, textarea')) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (submit.disabled) return;
      submit.disabled = true;
      try {
        const answer = await onSubmit(values());
        if (answer.status >= 200 && answer.status < 300) {
          result = answer.data;
          dialog.close();
          return;
        }
        showErrors(mapErrors(answer.status, answer.data, [...rows.keys()].filter((name) => shown(rows.get(name)))));
      } catch (error) {
        showErrors({ fields: new Map(), general: [`The request failed: ${error.message ?? error}`] });
      } finally {
        submit.disabled = false;
      }
    });
    cancel.addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => {
      dialog.remove();
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
      resolve(result);
    });
    refreshShown();
    document.body.append(dialog);
    dialog.showModal();
    [...rows.values()].find((entry) => !entry.row.hidden)?.input.focus();
  });
}
