// What the page draws from the API's answers: rows of names, and the analysis of a name
// (characters coloured by their probability, typicality, label posteriors as bars and a
// small inline SVG chart). Plain DOM, no library; colours set through the CSSOM (the
// page's Content-Security-Policy allows no inline styles).

import { perChar } from './shortlist.js';

const SVG = 'http://www.w3.org/2000/svg';

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  node.append(...children);
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

const pct = (p) => `${(p * 100).toFixed(p < 0.001 ? 2 : 1)}%`;

// Typicality: log-probability per character (end included), as a meter. Real names sit
// around -2; below -3 a name is one the model finds odd.
export function typicality(name, logprob) {
  const value = perChar(name, logprob);
  const meter = el('meter', {
    min: -4, max: -1, low: -3, high: -2, optimum: -1, value,
    'aria-label': `typicality of ${name}`,
    'aria-valuetext': `${value.toFixed(2)} nats per character`,
    'data-value': value,
  });
  return el('span', { class: 'typicality', title: 'log-probability per character (higher: more typical)' },
    meter, el('span', { class: 'num', text: value.toFixed(2) }));
}

export function corpusMark(inCorpus) {
  return inCorpus
    ? el('span', { class: 'badge known', text: 'in corpus', title: 'a name of the training corpus' })
    : el('span', { class: 'badge new', text: 'new', title: 'not in the training corpus' });
}

// One generated name: name, typicality, corpus mark, copy and star buttons.
export function nameRow(item, { kept, onCopy, onStar }) {
  const star = el('button', {
    type: 'button', class: 'star', 'aria-pressed': kept ? 'true' : 'false',
    'aria-label': `Keep ${item.name}`, title: 'keep in the shortlist', text: kept ? '★' : '☆',
    onclick: () => {
      const now = onStar(item);
      star.setAttribute('aria-pressed', now ? 'true' : 'false');
      star.textContent = now ? '★' : '☆';
    },
  });
  return el('li', { class: 'name-row', 'data-name': item.name },
    el('span', { class: 'name', text: item.name }),
    el('span', { class: 'info' }, typicality(item.name, item.logprob), corpusMark(item.in_corpus)),
    el('span', { class: 'buttons' },
      el('button', {
        type: 'button', class: 'copy', 'aria-label': `Copy ${item.name}`, text: 'Copy',
        onclick: () => onCopy(item.name),
      }),
      star));
}

// Hue from red (p <= 0.01) to green (p = 1), on a log scale: light enough for dark text.
function probColour(p) {
  const t = Math.min(1, Math.max(0, (Math.log10(Math.max(p, 1e-9)) + 2) / 2));
  return `hsl(${Math.round(120 * t)} 75% 82%)`;
}

function characters(score) {
  const spoken = score.char_probs.map(({ char, prob }) => `${char === '.' ? 'end' : char} ${pct(prob)}`);
  const box = el('span', {
    class: 'chars', role: 'img',
    'aria-label': `${score.name}, the probability of each character: ${spoken.join(', ')}`,
  });
  for (const { char, prob } of score.char_probs) {
    const end = char === '.';
    const span = el('span', {
      class: end ? 'ch end' : 'ch', 'data-char': char, 'data-prob': prob,
      title: `${end ? 'end' : char}: ${pct(prob)}`, text: end ? 'end' : char,
    });
    span.style.backgroundColor = probColour(prob);
    box.append(span);
  }
  return box;
}

// A categorical column (sex): one bar split by value.
function stackedBar(column, posterior, values) {
  const bar = el('span', {
    class: 'stack', role: 'img', 'data-column': column,
    'aria-label': `P(${column}): ${values.map((v) => `${v} ${pct(posterior.probs[v])}`).join(', ')}`,
  });
  values.forEach((value, i) => {
    const p = posterior.probs[value];
    const seg = el('span', { class: `seg seg${i % 4}`, 'data-value': value, 'data-prob': p, title: `${value}: ${pct(p)}` });
    seg.style.width = `${p * 100}%`;
    if (p >= 0.12) seg.textContent = `${value} ${Math.round(p * 100)}%`;
    bar.append(seg);
  });
  return el('div', { class: 'posterior' }, el('span', { class: 'label', text: `P(${column})` }), bar);
}

// An ordinal column (decade): a small bar chart, one bar per value.
function barChart(column, posterior, values, id) {
  // 240 units wide at most, bars up to 36 wide: a few values or fourteen decades alike
  const gap = 2, h = 48;
  const w = Math.min(36, (240 - gap * (values.length - 1)) / values.length);
  const width = values.length * (w + gap) - gap;
  const top = Math.max(...values.map((v) => posterior.probs[v]), 1e-9);
  const chart = svg('svg', {
    class: 'chart', viewBox: `0 0 240 ${h + 14}`, role: 'img', 'aria-labelledby': id,
    'data-column': column,
  });
  values.forEach((value, i) => {
    const p = posterior.probs[value];
    const bh = Math.max(0.5, (p / top) * h);
    const rect = svg('rect', {
      x: i * (w + gap), y: h - bh, width: w, height: bh,
      class: value === posterior.best ? 'bar best' : 'bar', 'data-value': value, 'data-prob': p,
    });
    const title = svg('title');
    title.textContent = `${value}: ${pct(p)}`;
    rect.append(title);
    chart.append(rect);
  });
  const ends = values.length > 1 ? [[0, 'start'], [values.length - 1, 'end']] : [[0, 'start']];
  for (const [i, anchor] of ends) {
    const text = svg('text', { x: anchor === 'start' ? 0 : width, y: h + 12, 'text-anchor': anchor, class: 'axis' });
    text.textContent = values[i];
    chart.append(text);
  }
  const expected = posterior.expected_year ?? posterior.expected;
  const caption = el('figcaption', { id },
    `P(${column}): most likely ${posterior.best}`,
    expected !== null && expected !== undefined ? `, expected ${Math.round(expected)}` : '');
  return el('figure', { class: 'posterior chart-box' }, chart, caption);
}

let charts = 0;

// One analysed name: its /score entry and, with labels, its /infer entry.
export function analysisCard(score, inferred, columns) {
  const card = el('article', { class: 'analysis', 'data-name': score.name },
    el('h3', {}, characters(score)),
    el('p', { class: 'facts' },
      typicality(score.name, score.logprob), corpusMark(score.in_corpus),
      el('span', { class: 'num', text: `perplexity ${score.perplexity.toFixed(1)}` })));
  if (inferred) {
    for (const col of columns) {
      const posterior = inferred.labels[col.name];
      if (!posterior) continue;
      card.append(col.ordinal
        ? barChart(col.name, posterior, col.values, `chart-${++charts}`)
        : stackedBar(col.name, posterior, col.values));
    }
  }
  return card;
}
