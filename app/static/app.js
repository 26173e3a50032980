// The page: its controls come from what the server offers (/model for the checkpoint's
// labels, /openapi.json for the /generate fields), the generate form lives in the URL so
// a link repeats a result, and every figure shown is the API's.

import { api, clearErrors, showErrors } from './api.js';
import { Shortlist, download, toCsv } from './shortlist.js';
import { analysisCard, el, nameRow } from './views.js';

const $ = (selector) => document.querySelector(selector);
const genForm = $('#generate-form');
const analyseForm = $('#analyse-form');
const status = (text) => { $('#status').textContent = text; };

const state = { numeric: new Set(), columns: [], canInfer: false, results: [] };
const shortlist = new Shortlist(drawShortlist);

async function start() {
  let model, schema;
  try {
    [model, schema] = await Promise.all([api('model'), api('openapi.json')]);
  } catch (error) {
    $('#model-info').textContent = 'The server did not answer.';
    showErrors(genForm, error);
    return;
  }
  describeModel(model);
  offerControls(model, schema);
  drawShortlist();
  genForm.addEventListener('submit', (e) => { e.preventDefault(); generate(); });
  analyseForm.addEventListener('submit', (e) => { e.preventDefault(); analyse(); });
  $('#download-results').addEventListener('click', () => download('namegen-names.csv', toCsv(state.results)));
  $('#download-shortlist').addEventListener('click', () => download('namegen-shortlist.csv', toCsv(shortlist.items)));
  $('#clear-shortlist').addEventListener('click', () => { shortlist.clear(); drawResults(); status('Shortlist cleared'); });
  const ranges = [['temperature', 2], ['guidance', 1]].filter(([name]) => $(`#f-${name}`));
  const shown = () => {
    for (const [name, digits] of ranges) $(`#o-${name}`).value = Number($(`#f-${name}`).value).toFixed(digits);
  };
  for (const [name] of ranges) $(`#f-${name}`).addEventListener('input', shown);
  if (fromUrl()) generate(); // a link to a result repeats it
  shown();
  document.body.dataset.ready = 'true';
}

function describeModel(model) {
  const params = model.num_params.toLocaleString('en');
  const labels = model.labels ? `, labels: ${model.labels.columns.map((c) => c.name).join(', ')}` : '';
  $('#model-info').textContent = `Checkpoint “${model.checkpoint}”: ${params} parameters${labels}.`;
}

// Keep only the controls /generate takes, with its limits; a select per label column.
function offerControls(model, schema) {
  const props = schema.components.schemas.GenerateRequest.properties;
  const paths = Object.keys(schema.paths || {});
  for (const box of document.querySelectorAll('#generate-form .field[data-field]')) {
    const field = props[box.dataset.field];
    if (!field) { box.remove(); continue; }
    const input = box.querySelector('input');
    const types = field.anyOf || [field];
    if (types.some((t) => t.type === 'integer' || t.type === 'number')) state.numeric.add(box.dataset.field);
    for (const t of types) {
      if (t.maximum !== undefined && input.type !== 'range') input.max = t.maximum;
      if (t.maxLength !== undefined) input.maxLength = t.maxLength;
    }
  }
  if (!model.labels) $('[data-field="guidance"]')?.remove(); // nothing to guide towards
  if (!$('.more .field')) $('.more').remove();
  if (props.labels && model.labels) {
    state.columns = model.labels.columns;
    const holder = $('#label-fields');
    for (const col of state.columns) {
      const id = `f-labels-${col.name}`;
      const select = el('select', { id, name: `labels.${col.name}` },
        el('option', { value: '', text: 'any' }),
        ...col.values.map((v) => el('option', { value: v, text: valueText(col, v) })));
      holder.append(el('div', { class: 'field', 'data-field': `labels.${col.name}` },
        el('label', { for: id, text: col.name[0].toUpperCase() + col.name.slice(1) }), select));
    }
    state.canInfer = paths.includes('/infer');
    $('#infer-link').hidden = !state.canInfer;
  }
}

const valueText = (col, v) => (col.ordinal && /^\d{4}$/.test(v) && v.endsWith('0') ? `${v}s` : v);

// The /generate body the form describes: empty fields are left to the API's defaults.
function request() {
  const body = {};
  const labels = {};
  for (const input of genForm.elements) {
    if (!input.name) continue;
    const [field, column] = input.name.split('.');
    if (input.type === 'checkbox') {
      if (input.checked) body[field] = true;
      continue;
    }
    const value = input.value.trim();
    if (value === '') continue;
    if (field === 'labels') labels[column] = value;
    else body[field] = state.numeric.has(field) ? number(value) : value;
  }
  if (Object.keys(labels).length) body.labels = labels;
  return body;
}

// An integer past 2^53 (a seed may go to 2^63 - 1) goes as its digits, which the API
// reads as the same integer: as a JavaScript number it would be rounded.
function number(text) {
  const value = Number(text);
  return Number.isInteger(value) && !Number.isSafeInteger(value) ? text : value;
}

// The form in the URL, and back: field=value for every field set, plus the seed used.
function toUrl(seed) {
  const params = new URLSearchParams();
  for (const input of genForm.elements) {
    if (!input.name) continue;
    if (input.type === 'checkbox') {
      if (input.checked) params.set(input.name, '1');
    } else if (input.value.trim() !== '' && input.name !== 'seed') {
      if (input.type !== 'range' || input.value !== input.defaultValue) params.set(input.name, input.value.trim());
    }
  }
  params.set('seed', String(seed));
  const url = `${location.pathname}?${params}`;
  history.replaceState(null, '', url);
  return url;
}

function fromUrl() {
  const params = new URLSearchParams(location.search);
  let any = false;
  for (const [name, value] of params) {
    const input = genForm.elements.namedItem(name);
    if (!input || !input.name) continue;
    if (input.type === 'checkbox') input.checked = value === '1' || value === 'true';
    else input.value = value;
    any = true;
  }
  return any;
}

async function generate() {
  const button = genForm.querySelector('button[type=submit]');
  const body = request();
  clearErrors(genForm);
  button.disabled = true;
  genForm.setAttribute('aria-busy', 'true');
  try {
    const out = await api('generate', body);
    state.results = out.names;
    const seed = body.seed !== undefined ? String(body.seed) : String(out.seed); // digits as sent
    const url = toUrl(seed);
    const summary = $('#result-summary');
    const short = out.complete ? '' : ` (fewer than asked: ${out.stopped})`;
    summary.replaceChildren(
      `${out.names.length} name${out.names.length === 1 ? '' : 's'}${short}, seed `,
      el('output', { id: 'seed-used', text: seed }),
      ' · ', el('a', { href: url, id: 'result-link', text: 'link to these names' }));
    drawResults();
    $('#results').hidden = false;
    status(`${out.names.length} names generated`);
  } catch (error) {
    showErrors(genForm, error);
  } finally {
    button.disabled = false;
    genForm.removeAttribute('aria-busy');
  }
}

function drawResults() {
  const rows = state.results.map((item) => nameRow(item, {
    kept: shortlist.has(item.name),
    onCopy: copy,
    onStar: (it) => {
      const kept = shortlist.toggle(it);
      status(kept ? `Kept ${it.name}` : `Removed ${it.name}`);
      return kept;
    },
  }));
  $('#result-list').replaceChildren(...rows);
}

function drawShortlist() {
  const items = shortlist.items;
  $('#shortlist').replaceChildren(...items.map((item) => el('li', { class: 'name-row', 'data-name': item.name },
    el('span', { class: 'name', text: item.name }),
    el('span', { class: 'buttons' },
      el('button', { type: 'button', class: 'copy', 'aria-label': `Copy ${item.name}`, text: 'Copy', onclick: () => copy(item.name) }),
      el('button', {
        type: 'button', class: 'remove', 'aria-label': `Remove ${item.name}`, text: 'Remove',
        onclick: () => { shortlist.remove(item.name); drawResults(); status(`Removed ${item.name}`); },
      })))));
  $('#shortlist-empty').hidden = items.length > 0;
  $('#shortlist-actions').hidden = items.length === 0;
}

async function copy(name) {
  try {
    await navigator.clipboard.writeText(name);
    status(`Copied ${name}`);
  } catch {
    status(`Could not copy ${name}: select it and copy it instead`);
  }
}

async function analyse() {
  const names = $('#f-names').value.split('\n').map((n) => n.trim()).filter(Boolean);
  clearErrors(analyseForm);
  if (!names.length) {
    showErrors(analyseForm, { message: 'type a name', details: [{ field: 'names', message: 'type at least one name' }] });
    return;
  }
  const button = analyseForm.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    const [scored, inferred] = await Promise.all([
      api('score', { names }),
      state.canInfer ? api('infer', { names }) : null,
    ]);
    $('#analysis').replaceChildren(...scored.scores.map((score, i) =>
      analysisCard(score, inferred ? inferred.results[i] : null, state.columns)));
    status(`${scored.scores.length} names analysed`);
  } catch (error) {
    showErrors(analyseForm, error);
  } finally {
    button.disabled = false;
  }
}

start();
