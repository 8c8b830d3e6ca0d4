// The Captures page (templates/captures/capture_list.html): the form that starts a capture. Hosts,
// namespaces and interfaces come from each host's last known state (the page's JSON); the graph's
// "Capture here…" opens the page with ?host=&namespace=&interface= filled in. The API's field errors
// go under their field; on 202 the page moves to the capture's live page.

import { api } from './api.js';
import { $, el } from './dom.js';
import { captureRequest } from './captures-model.js';
import { mapErrors } from './forms.js';

const page = JSON.parse($('#captures-page').textContent);
const form = $('#capture-form');
const inputs = {
  host: $('#capture-host'),
  namespace: $('#capture-namespace'),
  typed: $('#capture-interfaces-typed'),
  filter: $('#capture-filter'),
  count: $('#capture-count'),
  duration: $('#capture-duration'),
};
const FIELDS = ['host', 'namespace', 'interfaces', 'filter', 'count', 'duration'];
const firstInput = { interfaces: () => form.querySelector('#capture-interface-list input') ?? inputs.typed };
const general = $('#capture-errors');
const list = $('#capture-interface-list');

function namespaces() {
  return page.targets[inputs.host.value] ?? {};
}

function fillNamespaces() {
  $('#capture-namespaces').replaceChildren(...Object.keys(namespaces()).map((name) => el('option', { value: name })));
}

function fillInterfaces(ticked = new Set()) {
  const names = namespaces()[inputs.namespace.value.trim()] ?? [];
  list.replaceChildren(
    ...names.map((name, i) =>
      el('label', { class: 'check', for: `capture-if-${i}` }, el('input', { type: 'checkbox', id: `capture-if-${i}`, value: name, checked: ticked.has(name) }), ` ${name}`),
    ),
  );
  if (!names.length) list.append(el('span', { class: 'muted' }, inputs.namespace.value ? 'No interfaces known here: type their names.' : 'Choose a namespace first.'));
}

function showErrors({ fields, general: messages }) {
  for (const name of FIELDS) {
    const error = $(`#capture-${name}-error`);
    const mine = fields.get(name) ?? [];
    error.textContent = mine.join(' ');
    error.hidden = mine.length === 0;
    const input = name === 'interfaces' ? inputs.typed : inputs[name];
    if (mine.length) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }
  general.replaceChildren(...messages.map((message) => el('p', {}, message)));
  general.hidden = messages.length === 0;
  const first = FIELDS.find((name) => fields.has(name));
  (first ? firstInput[first]?.() ?? inputs[first] : general).focus();
}

async function submit(event) {
  event.preventDefault();
  const button = $('#capture-submit');
  if (button.disabled) return;
  button.disabled = true;
  const body = captureRequest({
    host: inputs.host.value,
    namespace: inputs.namespace.value,
    checked: [...list.querySelectorAll('input:checked')].map((box) => box.value),
    typed: inputs.typed.value,
    filter: inputs.filter.value,
    count: inputs.count.value,
    duration: inputs.duration.value,
  });
  try {
    const { status, data } = await api(page.captures_url, { method: 'POST', body });
    if (status === 202) {
      window.location.assign(`/captures/${encodeURIComponent(data.id)}/`);
      return;
    }
    showErrors(mapErrors(status, data, FIELDS));
  } catch (error) {
    showErrors({ fields: new Map(), general: [`The request failed: ${error.message ?? error}`] });
  } finally {
    button.disabled = false;
  }
}

const hosts = Object.keys(page.targets);
inputs.host.replaceChildren(...(hosts.length ? hosts.map((name) => el('option', { value: name }, name)) : [el('option', { value: '' }, 'no host yet')]));
const { host, namespace, interface: wanted } = page.prefill;
if (host) {
  if (!hosts.includes(host)) inputs.host.append(el('option', { value: host }, host));
  inputs.host.value = host;
}
fillNamespaces();
inputs.namespace.value = namespace || (namespaces().host ? 'host' : '');
fillInterfaces(new Set(wanted ? [wanted] : []));
if (wanted && !(namespaces()[inputs.namespace.value] ?? []).includes(wanted)) inputs.typed.value = wanted;

inputs.host.addEventListener('change', () => {
  fillNamespaces();
  inputs.namespace.value = namespaces().host ? 'host' : '';
  fillInterfaces();
});
inputs.namespace.addEventListener('input', () => fillInterfaces());
form.addEventListener('submit', submit);
(host ? inputs.filter : inputs.host).focus();
