// DOM helpers. Nothing here parses HTML: every server string reaches the page as a text node
// (the CSP requires Trusted Types for HTML sinks, and the page uses none).

/** The element with `id` (throws if the page lacks it: a bug, not input). */
export function $(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`missing element #${id}`);
  return e;
}

/** A new element: `el('td', { class: 'bid', text: '1.00' }, child...)`. */
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (k === 'text') e.textContent = String(v);
    else if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.dataset[camel(k.slice(5))] = String(v);
    else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function camel(s) {
  return s.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
}

/**
 * Brings a table body to `rows` in place: a row keeps its element while its key stays, so a
 * button in it survives the repaints (a click between two updates still lands) and only
 * changed cells are touched. `rows`: [{ key, data: { dataset values }, cells: [[text, class]],
 * action: null | () => Element }]; with `actions`, the last column holds the action.
 */
export function syncRows(tbody, rows, actions = false) {
  const old = new Map([...tbody.children].map((tr) => [tr.dataset.key, tr]));
  let prev = null;
  for (const r of rows) {
    let tr = old.get(r.key);
    old.delete(r.key);
    if (!tr) {
      tr = el('tr', { 'data-key': r.key });
      for (let i = 0; i < r.cells.length + (actions ? 1 : 0); i++) tr.append(el('td'));
    }
    for (const [k, v] of Object.entries(r.data || {})) if (tr.dataset[k] !== String(v)) tr.dataset[k] = String(v);
    r.cells.forEach(([text, cls], i) => {
      const td = tr.children[i];
      setText(td, text);
      if (td.className !== (cls || '')) td.className = cls || '';
    });
    if (actions) {
      const cell = tr.lastElementChild;
      if (!r.action) cell.replaceChildren();
      else if (!cell.firstElementChild) cell.append(r.action());
    }
    if (prev ? prev.nextElementSibling !== tr : tbody.firstElementChild !== tr) {
      if (prev) prev.after(tr);
      else tbody.prepend(tr);
    }
    prev = tr;
  }
  for (const tr of old.values()) tr.remove();
}

/** Sets `e`'s text only when it changed (no layout work otherwise). */
export function setText(e, text) {
  const t = text === null || text === undefined ? '–' : String(text);
  if (e.textContent !== t) e.textContent = t;
}

/** HH:MM:SS.mmm of a ms timestamp, local time. */
export function clock(ms) {
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** A duration in ms as "850 µs", "12.3 ms", "4.0 s". */
export function duration(ms) {
  if (!Number.isFinite(ms)) return '–';
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

/** A duration in ns, for latency figures. */
export function nanos(ns) {
  if (!Number.isFinite(ns)) return '–';
  if (ns < 1000) return `${ns} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(ns < 1e4 ? 1 : 0)} µs`;
  return `${(ns / 1e6).toFixed(ns < 1e7 ? 1 : 0)} ms`;
}

/** Shows a notification for `ms` (default 8 s); `severity` is critical, warning or info. */
export function notify(title, message, severity = 'info', ms = 8000) {
  const box = $('toasts');
  const t = el('div', { class: 'toast', 'data-severity': severity, role: 'alert' }, el('b', { text: title }), el('span', { text: message }));
  box.append(t);
  while (box.children.length > 5) box.firstElementChild.remove();
  setTimeout(() => t.remove(), ms);
  return t;
}

// Wall clock with sub-ms precision: the monotonic clock from an anchor on the wall clock.
// `performance.timeOrigin` alone drifts from the wall clock over a long-lived page (the
// system clock is slewed or the machine sleeps), so the anchor is checked every few seconds.
let anchor = performance.timeOrigin;
let checked = 0;

/** Wall-clock time in ms with sub-ms precision (comparable with `recv_ns / 1e6`). */
export function nowMs() {
  const mono = performance.now();
  if (mono - checked > 5000) {
    checked = mono;
    const wall = Date.now();
    if (Math.abs(anchor + mono - wall) > 2) anchor = wall - mono;
  }
  return anchor + mono;
}
