// The portal's one import of the vendored Preact + htm, and small helpers every screen uses.
import { createContext, Fragment, h, render } from '../vendor/preact.js';
import { useCallback, useContext, useEffect, useLayoutEffect, useMemo, useRef, useState } from '../vendor/hooks.js';
import htm from '../vendor/htm.js';

export const html = htm.bind(h);
export { createContext, Fragment, h, render, useCallback, useContext, useEffect, useLayoutEffect, useMemo, useRef,
  useState };

/** 0.873 -> "87.3%"; null (undefined metric) -> "n/a". */
export function pct(value, digits = 1) {
  return value === null || value === undefined || Number.isNaN(value) ? 'n/a' : `${(value * 100).toFixed(digits)}%`;
}

export function plural(n, one, many = `${one}s`) { return `${n} ${n === 1 ? one : many}`; }

export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

/** Re-run `fn` every `ms` while `active`. */
export function useInterval(fn, ms, active = true) {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    if (!active) return undefined;
    const id = setInterval(() => saved.current(), ms);
    return () => clearInterval(id);
  }, [ms, active]);
}

/** Call `fn(event)` on every keydown in the window while the component is mounted. The listener is attached in a
 * layout effect, before the browser paints what the component rendered: a key pressed as soon as the screen shows
 * it is never missed (a plain effect runs a frame later, and a fast key press would fall into that gap). */
export function useWindowKeys(fn) {
  const saved = useRef(fn);
  saved.current = fn;
  useLayoutEffect(() => {
    const onKey = (e) => saved.current(e);
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, []);
}

/** Run an async loader when `deps` change: {data, error, loading, reload}. Stale answers are dropped. */
export function useLoad(loader, deps) {
  const [state, setState] = useState({ data: undefined, error: null, loading: true });
  const run = useRef(0);
  const reload = useCallback(() => {
    const mine = ++run.current;
    setState((s) => ({ ...s, loading: true }));
    return Promise.resolve().then(loader).then(
      (data) => { if (mine === run.current) setState({ data, error: null, loading: false }); return data; },
      (error) => { if (mine === run.current) setState((s) => ({ ...s, error, loading: false })); });
  }, deps);
  useEffect(() => { reload(); }, [reload]);
  return { ...state, reload };
}

/** The hash route: "#/projects/ID/images?tagged=1" -> {path: ["projects", "ID", "images"], query: {tagged: "1"}}. */
export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#\/?/, '');
  const [path, search = ''] = raw.split('?');
  return { path: path.split('/').filter(Boolean).map(decodeURIComponent),
    query: Object.fromEntries(new URLSearchParams(search)) };
}

export function hrefFor(path, query = {}) {
  const q = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined && v !== null && v !== ''));
  const s = q.toString();
  return `#/${path.map(encodeURIComponent).join('/')}${s ? `?${s}` : ''}`;
}

export function useRoute() {
  const [route, setRoute] = useState(parseHash());
  useEffect(() => {
    const on = () => setRoute(parseHash());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

export function navigate(path, query, { replace = false } = {}) {
  const target = hrefFor(path, query);
  if (replace) history.replaceState(null, '', target); else location.hash = target;
  if (replace) dispatchEvent(new HashChangeEvent('hashchange'));
}

export function formatDate(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function elapsed(fromIso, now = Date.now()) {
  const s = Math.max(0, Math.round((now - new Date(fromIso).getTime()) / 1000));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/** The newest Completed iteration (by training time), as the service's quick test picks it. */
export function latestCompleted(iterations) {
  const done = (iterations || []).filter((i) => i.status === 'Completed');
  return done.sort((a, b) => String(b.trainedAt || b.created).localeCompare(String(a.trainedAt || a.created)))[0] || null;
}
