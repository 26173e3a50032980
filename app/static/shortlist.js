// The shortlist: starred names kept in localStorage, so they survive a reload; and CSV
// files of names, made in the browser (nothing is sent anywhere).

const STORE = 'namegen.shortlist';

export const perChar = (name, logprob) => logprob / (name.length + 1); // as /score's logprob_per_char

export class Shortlist {
  constructor(onChange) {
    this.onChange = onChange;
    this.items = load();
  }

  has(name) {
    return this.items.some((item) => item.name === name);
  }

  toggle(item) {
    if (this.has(item.name)) this.items = this.items.filter((i) => i.name !== item.name);
    else this.items.push({ name: item.name, logprob: item.logprob, in_corpus: item.in_corpus });
    this.save();
    return this.has(item.name);
  }

  remove(name) {
    this.items = this.items.filter((i) => i.name !== name);
    this.save();
  }

  clear() {
    this.items = [];
    this.save();
  }

  save() {
    try {
      localStorage.setItem(STORE, JSON.stringify(this.items));
    } catch {
      // storage full or refused (private windows): the list lives until the page goes
    }
    this.onChange();
  }
}

function load() {
  try {
    const items = JSON.parse(localStorage.getItem(STORE) || '[]');
    return Array.isArray(items) ? items.filter((i) => i && typeof i.name === 'string') : [];
  } catch {
    return [];
  }
}

const cell = (value) => {
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
};

export function toCsv(items) {
  const rows = [['name', 'logprob', 'logprob_per_char', 'in_corpus']];
  for (const { name, logprob, in_corpus } of items) {
    rows.push([name, logprob, perChar(name, logprob), in_corpus]);
  }
  return rows.map((row) => row.map(cell).join(',')).join('\r\n') + '\r\n';
}

export function download(filename, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
