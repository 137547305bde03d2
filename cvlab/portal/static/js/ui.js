// Shared pieces of every screen: dialogs, alerts, progress, sliders, gauges, icons, toasts.
import { html, pct, useEffect, useRef, useState } from './lib.js';

/** A modal <dialog> named by its title (Escape or the x closes it). */
export function Dialog({ title, onClose, children, footer, size = '', className = '', describedBy }) {
  const ref = useRef(null);
  const titleId = useRef(`dlg-${Math.random().toString(36).slice(2)}`).current;
  const closeRef = useRef(onClose);
  closeRef.current = onClose;
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    const cancel = (e) => { e.preventDefault(); if (closeRef.current) closeRef.current(); };
    d.addEventListener('cancel', cancel);
    return () => { d.removeEventListener('cancel', cancel); if (d.open) d.close(); };
  }, []);
  return html`<dialog ref=${ref} class=${`dialog ${size} ${className}`} aria-labelledby=${titleId}
      aria-describedby=${describedBy}>
    <header class="dialog-head">
      <h2 id=${titleId}>${title}</h2>
      ${onClose && html`<button type="button" class="icon-button" aria-label="Close" title="Close" onClick=${onClose}>
        ${icon('close')}</button>`}
    </header>
    <div class="dialog-body">${children}</div>
    ${footer && html`<footer class="dialog-foot">${footer}</footer>`}
  </dialog>`;
}

/** An error from the server, with Azure's code and message as text. */
export function ErrorText({ error, prefix }) {
  if (!error) return null;
  const code = error.code && error.code !== String(error.status) ? error.code : null;
  return html`<div class="alert error" role="alert">
    ${prefix && html`<strong>${prefix} </strong>`}${error.message || String(error)}
    ${code && html` <span class="code">(${code})</span>`}
  </div>`;
}

export function Notice({ kind = 'info', children }) {
  return html`<div class=${`alert ${kind}`} role=${kind === 'info' ? 'status' : 'alert'}>${children}</div>`;
}

/** A progress bar: `value` of `max`, or indeterminate when value is null. */
export function Progress({ label, value = null, max = 1, text }) {
  return html`<div class="progress">
    <progress aria-label=${label} value=${value === null ? undefined : value} max=${max}></progress>
    ${text && html`<span class="progress-text">${text}</span>`}
  </div>`;
}

/** A percentage slider, named by `label` (Azure's "Probability Threshold", "Overlap Threshold", ...). */
export function Slider({ label, value, onInput, min = 0, max = 100, step = 1, help }) {
  const id = useRef(`sl-${Math.random().toString(36).slice(2)}`).current;
  return html`<div class="slider">
    <label for=${id}>${label}: <output for=${id}>${value}%</output></label>
    <input id=${id} type="range" min=${min} max=${max} step=${step} value=${value}
      aria-valuetext=${`${value}%`} onInput=${(e) => onInput(Number(e.currentTarget.value))} />
    ${help && html`<small class="muted">${help}</small>`}
  </div>`;
}

/** A ring gauge with the metric's name and value (Precision, Recall, AP / mAP). */
export function Gauge({ label, value, extra = false }) {
  const r = 42;
  const c = 2 * Math.PI * r;
  const v = value === null || value === undefined ? 0 : Math.max(0, Math.min(1, value));
  return html`<figure class=${`gauge${extra ? ' extra' : ''}`} role="group" aria-label=${`${label} ${pct(value)}`}>
    <svg viewBox="0 0 100 100" aria-hidden="true" focusable="false">
      <circle class="gauge-track" cx="50" cy="50" r=${r} />
      <circle class="gauge-value" cx="50" cy="50" r=${r} stroke-dasharray=${`${v * c} ${c}`}
        transform="rotate(-90 50 50)" />
    </svg>
    <div class="gauge-text"><span class="gauge-number">${pct(value)}</span></div>
    <figcaption>${label}</figcaption>
  </figure>`;
}

const PATHS = {
  gear: 'M19.4 13a7.5 7.5 0 0 0 0-2l2.1-1.6-2-3.5-2.5 1a7.3 7.3 0 0 0-1.7-1l-.4-2.7h-4l-.4 2.7a7.3 7.3 0 0 0-1.7 1l-2.5-1-2 3.5L4.6 11a7.5 7.5 0 0 0 0 2l-2.1 1.6 2 3.5 2.5-1c.5.4 1.1.7 1.7 1l.4 2.7h4l.4-2.7c.6-.3 1.2-.6 1.7-1l2.5 1 2-3.5zM12 15.5a3.5 3.5 0 1 1 0-7 3.5 3.5 0 0 1 0 7z',
  eye: 'M12 5C6.5 5 2.7 9.3 1.5 12c1.2 2.7 5 7 10.5 7s9.3-4.3 10.5-7C21.3 9.3 17.5 5 12 5zm0 11.5a4.5 4.5 0 1 1 0-9 4.5 4.5 0 0 1 0 9zm0-2.5a2 2 0 1 0 0-4 2 2 0 0 0 0 4z',
  plus: 'M11 4h2v7h7v2h-7v7h-2v-7H4v-2h7z',
  close: 'M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6z',
  train: 'M7 3a4 4 0 0 0-1 7.9V13H4v2h2v2.1A4 4 0 1 0 8 17v-2h8v2.1a4 4 0 1 0 2 0V15h2v-2h-2v-2.1A4 4 0 1 0 16 11v2H8v-2.1A4 4 0 0 0 7 3z',
  flask: 'M9 2h6v2h-1v5.2l5.6 9.3A2.3 2.3 0 0 1 17.6 22H6.4a2.3 2.3 0 0 1-2-3.5L10 9.2V4H9zm3 9-3.2 5h6.4z',
  check: 'M9 16.2 4.8 12l-1.4 1.4L9 19 21 7l-1.4-1.4z',
  left: 'M15.4 7.4 14 6l-6 6 6 6 1.4-1.4L10.8 12z',
  right: 'M8.6 16.6 10 18l6-6-6-6-1.4 1.4 4.6 4.6z',
  trash: 'M9 3h6l1 1h4v2H4V4h4zM6 8h12l-1 13H7z',
  link: 'M10.6 13.4a1 1 0 0 0 1.4 0l4-4a3 3 0 0 0-4.2-4.2l-1.5 1.5 1.4 1.4 1.5-1.5a1 1 0 0 1 1.4 1.4l-4 4a1 1 0 0 0 0 1.4zm2.8-2.8a1 1 0 0 0-1.4 0l-4 4a3 3 0 0 0 4.2 4.2l1.5-1.5-1.4-1.4-1.5 1.5a1 1 0 0 1-1.4-1.4l4-4a1 1 0 0 0 0-1.4z',
  download: 'M11 3h2v9.2l3.3-3.3 1.4 1.4L12 16 6.3 10.3l1.4-1.4 3.3 3.3zM5 18h14v2H5z',
  mail: 'M3 5h18v14H3zm2 2v.5l7 4.5 7-4.5V7zm14 2.9-7 4.5-7-4.5V17h14z',
  tag: 'M3 3h8l10 10-8 8L3 11zm4 2.5a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z',
  arrow: 'M12 4 10.6 5.4 16.2 11H4v2h12.2l-5.6 5.6L12 20l8-8z',
  sparkle: 'M12 2l2 6 6 2-6 2-2 6-2-6-6-2 6-2zM19 15l1 3 3 1-3 1-1 3-1-3-3-1 3-1z',
};

/** A decorative icon (the button or link around it carries the name). */
export function icon(name) {
  return html`<svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d=${PATHS[name]} /></svg>`;
}

// ---- toasts: short confirmations read out by screen readers ------------------------------------------------------
const toastListeners = new Set();
export function toast(text, kind = 'info') { toastListeners.forEach((fn) => fn({ text, kind, at: Date.now() })); }

export function Toasts() {
  const [items, setItems] = useState([]);
  useEffect(() => {
    const add = (t) => {
      setItems((list) => [...list.slice(-3), t]);
      setTimeout(() => setItems((list) => list.filter((x) => x !== t)), 6000);
    };
    toastListeners.add(add);
    return () => toastListeners.delete(add);
  }, []);
  return html`<div class="toasts" role="status" aria-live="polite">
    ${items.map((t) => html`<div class=${`toast ${t.kind}`} key=${t.at}>${t.text}</div>`)}
  </div>`;
}

/** A read-only value with a Copy button (keys, endpoints, ids). `secret` hides it until "Show". */
export function CopyField({ label, value, secret = false }) {
  const [shown, setShown] = useState(!secret);
  const id = useRef(`cf-${Math.random().toString(36).slice(2)}`).current;
  const copy = async () => {
    try { await navigator.clipboard.writeText(value); toast(`${label} copied`); } catch (_) {
      const input = document.getElementById(id);
      input.select();
      toast('Select the text and press Ctrl+C to copy it');
    }
  };
  return html`<div class="copy-field">
    <label for=${id}>${label}</label>
    <div class="copy-row">
      <input id=${id} readonly type=${shown ? 'text' : 'password'} value=${value} spellcheck="false"
        autocomplete="off" onFocus=${(e) => e.currentTarget.select()} />
      ${secret && html`<button type="button" class="secondary" onClick=${() => setShown(!shown)}
        aria-label=${`${shown ? 'Hide' : 'Show'} ${label}`}>${shown ? 'Hide' : 'Show'}</button>`}
      <button type="button" class="secondary" onClick=${copy} aria-label=${`Copy ${label}`}>Copy</button>
    </div>
  </div>`;
}

/** A short tag: visible name (text, never HTML) and an optional remove button. */
export function Chip({ name, onRemove, title, kind = '' }) {
  return html`<span class=${`chip ${kind}`} title=${title}>
    <span class="chip-name">${name}</span>
    ${onRemove && html`<button type="button" class="chip-x" aria-label=${`Remove tag ${name}`} onClick=${onRemove}>
      ${icon('close')}</button>`}
  </span>`;
}

export function Extra({ children }) {
  return html`<span class="extra-badge" title="cvlab extra: not on Azure's portal">${children || 'cvlab extra'}</span>`;
}

// ---- confirmations: a portal dialog instead of window.confirm ---------------------------------------------------
const askListeners = new Set();
/** Ask a yes/no question in a dialog; resolves true when the learner confirms. */
export function ask(question, { title = 'Are you sure?', confirmLabel = 'Delete' } = {}) {
  return new Promise((resolve) => askListeners.forEach((fn) => fn({ question, title, confirmLabel, resolve })));
}

export function AskHost() {
  const [q, setQ] = useState(null);
  useEffect(() => { askListeners.add(setQ); return () => askListeners.delete(setQ); }, []);
  if (!q) return null;
  const answer = (yes) => { setQ(null); q.resolve(yes); };
  return html`<${Dialog} title=${q.title} onClose=${() => answer(false)} size="narrow">
    <p>${q.question}</p>
    <div class="buttons">
      <button type="button" class="secondary" onClick=${() => answer(false)}>Cancel</button>
      <button type="button" class="danger" onClick=${() => answer(true)}>${q.confirmLabel}</button>
    </div>
  </${Dialog}>`;
}
