// The public API, as any script would use it: JSON in and out, on this page's own origin
// (relative paths, so the page works behind a proxy's path prefix too). When the server
// answers 401 the page asks for a key once and keeps it for this tab (sessionStorage).

const KEY = 'namegen.apiKey';

// The API's error body: {"error": {"code", "message", "details": [{"field", "message"}]}}
export class ApiError extends Error {
  constructor(status, error) {
    super(error.message);
    this.status = status;
    this.code = error.code;
    this.details = error.details || [];
  }
}

let asking = null; // one prompt, whatever the number of requests refused meanwhile

function askKey(message) {
  if (asking) return asking;
  const dialog = document.getElementById('key-dialog');
  const form = document.getElementById('key-form');
  const input = document.getElementById('f-key');
  asking = new Promise((resolve, reject) => {
    const done = (ok) => {
      form.removeEventListener('submit', submit);
      dialog.removeEventListener('cancel', cancel);
      if (dialog.open) dialog.close();
      asking = null;
      if (ok) resolve();
      else reject(new ApiError(401, { code: 'unauthorized', message: 'an API key is needed' }));
    };
    const submit = (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      sessionStorage.setItem(KEY, key);
      done(true);
    };
    const cancel = () => done(false);
    form.addEventListener('submit', submit);
    dialog.addEventListener('cancel', cancel);
  });
  document.getElementById('key-message').textContent = message;
  input.value = '';
  dialog.showModal();
  input.focus();
  return asking;
}

// GET `path`, or POST `body` to it as JSON; the parsed answer, or an ApiError.
export async function api(path, body) {
  for (;;) {
    const headers = { Accept: 'application/json' };
    const key = sessionStorage.getItem(KEY);
    if (key) headers['X-API-Key'] = key;
    const init = { headers };
    if (body !== undefined) {
      init.method = 'POST';
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(path, init);
    const data = await resp.json().catch(() => null);
    if (resp.status === 401) {
      sessionStorage.removeItem(KEY);
      const said = data && data.error ? data.error.message : 'missing API key';
      await askKey(`This server needs an API key (it said: ${said}).`);
      continue;
    }
    if (!resp.ok) {
      const error = data && data.error ? data.error : { code: 'error', message: `${resp.status} ${resp.statusText}` };
      throw new ApiError(resp.status, error);
    }
    return data;
  }
}

// Shows `error` beside the fields it names (a `.field[data-field]` in `form`, "names.3"
// falling back to "names"); what names no field shows at the top of the form.
export function showErrors(form, error) {
  clearErrors(form);
  const general = [];
  const details = error.details || [];
  for (const { field, message } of details) {
    const box = fieldBox(form, field);
    if (box) addError(box, field, message);
    else general.push(message);
  }
  if (!details.length || general.length) {
    const top = form.querySelector('.form-error');
    top.textContent = general.length ? general.join('; ') : error.message;
    top.hidden = false;
  }
  const first = form.querySelector('[aria-invalid="true"]');
  if (first) first.focus();
}

export function clearErrors(form) {
  for (const p of form.querySelectorAll('.error')) p.remove();
  for (const el of form.querySelectorAll('[aria-invalid]')) {
    el.removeAttribute('aria-invalid');
    el.setAttribute('aria-describedby', (el.dataset.describedby || '').trim());
    if (!el.getAttribute('aria-describedby')) el.removeAttribute('aria-describedby');
  }
  const top = form.querySelector('.form-error');
  top.hidden = true;
  top.textContent = '';
}

function fieldBox(form, field) {
  const parts = field.split('.');
  for (let n = parts.length; n > 0; n--) {
    const box = form.querySelector(`.field[data-field="${CSS.escape(parts.slice(0, n).join('.'))}"]`);
    if (box && !box.hidden) return box;
  }
  return null;
}

function addError(box, field, message) {
  const control = box.querySelector('input, select, textarea');
  let p = box.querySelector('.error');
  if (!p) {
    p = document.createElement('p');
    p.className = 'error';
    p.id = `err-${box.dataset.field}`;
    box.append(p);
  }
  p.textContent = p.textContent ? `${p.textContent}; ${message}` : message;
  p.dataset.field = field;
  if (control) {
    if (!('describedby' in control.dataset)) {
      control.dataset.describedby = control.getAttribute('aria-describedby') || '';
    }
    control.setAttribute('aria-invalid', 'true');
    control.setAttribute('aria-describedby', `${control.dataset.describedby} ${p.id}`.trim());
  }
}
