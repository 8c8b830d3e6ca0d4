// One capture's page (templates/captures/capture_detail.html), live: its status and progress, the
// packet table fed by /ws/captures/<id>/ (rows are drawn once per animation frame, and only the last
// ROW_LIMIT stay in the DOM), a row's full decode by tshark as a collapsible tree beside the table,
// Stop, Delete and the pcap download.

import { api } from './api.js';
import { $, el } from './dom.js';
import { RowWindow, hexLines, nodeLabel, progress, rowTime, statusText } from './captures-model.js';
import { Connection } from './socket.js';

const page = JSON.parse($('#capture-page').textContent);
const body = $('#capture-packets-body');
const scroller = $('#capture-scroll');
const follow = $('#capture-follow');
const rows = new RowWindow();
let capture = page.capture;
let pending = []; // rows received, not drawn yet
let drawing = false;
let selected = null; // the row element whose decode is shown

function showStatus() {
  const status = $('#capture-status');
  status.textContent = statusText(capture);
  status.className = `capture-status status-${capture.status}`;
  const { value, max, text } = progress(capture);
  Object.assign($('#capture-progress'), { value, max });
  $('#capture-progress-text').textContent = text;
  $('#capture-stop').hidden = !['pending', 'running'].includes(capture.status);
  const error = $('#capture-error');
  error.textContent = capture.error;
  error.hidden = !capture.error;
  $('#capture-rows-note').textContent = rows.note(capture.rows_kept);
}

function rowElement(row) {
  const cells = [row.number, rowTime(row.time), row.interface, row.source, row.destination, row.protocol, row.length, row.info];
  return el('tr', { tabindex: '0', 'data-number': String(row.number), class: `proto-${row.protocol.toLowerCase().replace(/[^a-z0-9]/g, '')}` }, cells.map((text) => el('td', {}, String(text))));
}

function draw() {
  drawing = false;
  const { added, removed } = rows.add(pending);
  pending = [];
  for (let i = 0; i < removed; i += 1) body.firstElementChild?.remove();
  const fragment = document.createDocumentFragment();
  added.forEach((row) => fragment.append(rowElement(row)));
  body.append(fragment);
  $('#capture-empty').hidden = rows.size > 0;
  $('#capture-rows-note').textContent = rows.note(capture.rows_kept);
  if (follow.checked) scroller.scrollTop = scroller.scrollHeight;
}

function queue(newRows) {
  pending.push(...newRows);
  if (!drawing) {
    drawing = true;
    requestAnimationFrame(draw);
  }
}

function treeNode(node) {
  if (!node.children?.length) return el('li', {}, nodeLabel(node));
  const layer = node.value === undefined; // a protocol layer opens; a field's details stay folded
  const details = el('details', layer ? { open: '' } : {}, el('summary', {}, nodeLabel(node)), el('ul', {}, node.children.map(treeNode)));
  return el('li', {}, details);
}

async function decode(tr) {
  selected?.removeAttribute('aria-selected');
  selected = tr;
  tr.setAttribute('aria-selected', 'true');
  const number = tr.dataset.number;
  const note = $('#decode-note');
  note.textContent = `Decoding frame ${number}…`;
  const { status, data } = await api(`${page.packet_url}${number}/`);
  if (selected !== tr) return; // another row was chosen meanwhile
  if (status !== 200) {
    note.textContent = data?.message ?? `The server answered ${status}.`;
    $('#decode-tree').replaceChildren();
    $('#decode-bytes').hidden = true;
    return;
  }
  note.textContent = `Frame ${data.number}, as tshark dissects it:`;
  $('#decode-tree').replaceChildren(el('ul', { class: 'tree' }, data.tree.map(treeNode)));
  $('#decode-hex').textContent = hexLines(data.hex).join('\n');
  $('#decode-bytes').hidden = !data.hex;
}

function onFrame(frame) {
  if (frame.type === 'capture.status') {
    capture = frame.capture;
    showStatus();
  } else if (frame.type === 'capture.rows') {
    queue(frame.rows);
  } else if (frame.type === 'capture.deleted') {
    window.location.assign(page.list_url);
  }
}

body.addEventListener('click', (event) => {
  const tr = event.target.closest('tr[data-number]');
  if (tr) decode(tr);
});
body.addEventListener('keydown', (event) => {
  const tr = event.target.closest('tr[data-number]');
  if (!tr) return;
  if (event.key === 'Enter' || event.key === ' ') {
    event.preventDefault();
    decode(tr);
  } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
    event.preventDefault();
    (event.key === 'ArrowDown' ? tr.nextElementSibling : tr.previousElementSibling)?.focus();
  }
});
scroller.addEventListener('scroll', () => {
  // scrolling up to read stops following; back at the bottom, following resumes
  follow.checked = scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 4;
});
$('#capture-stop').addEventListener('click', async () => {
  const { status, data } = await api(page.stop_url, { method: 'POST' });
  if (status === 200 || status === 202) {
    capture = data;
    showStatus();
  }
});
$('#capture-delete').addEventListener('click', async () => {
  if (!window.confirm('Delete this capture, its file and its rows?')) return;
  const { status } = await api(page.detail_url, { method: 'DELETE' });
  if (status === 204) window.location.assign(page.list_url);
});

showStatus();
setInterval(() => capture.status === 'running' && showStatus(), 1000); // the time left
const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
new Connection(`${scheme}//${location.host}${page.ws_path}`, { onFrame, onStatus: () => {} }).open();
