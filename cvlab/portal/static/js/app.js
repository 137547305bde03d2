// The portal's shell: sign-in, the top bar, and the screens by route.
//
// Screens are chosen by the hash (#/ is the projects gallery, #/projects/<id>/<tab> a project). Top-level screens
// are listed in TOP_SCREENS; one with a `screen` is drawn for its route (the workshop's Class page, issue 21, for an
// instructor's key only: session.role === "instructor").
import { ApiError, onKeyRefused, portal, session } from './api.js';
import { ClassPage } from './class.js';
import { Gallery } from './gallery.js';
import { AppContext, useApp } from './context.js';
import { html, render, useCallback, useEffect, useState, useRoute } from './lib.js';
import { ProjectPage } from './project.js';
import { AskHost, Toasts, icon } from './ui.js';
import { UploadIndicator } from './uploads.js';

const REFUSED = 'This training key was refused (Access Denied). Use the "Training key" that `cvlab serve` '
  + 'printed, or the key of your seat on the workshop handout.';
const EXPIRED = 'Your session has ended: the server no longer accepts your training key (it may have been '
  + 'restarted with other keys, or your instructor issued new ones). Sign in again.';

/** Top-level screens by first route segment; `show(session)` says who sees the tab. */
const TOP_SCREENS = [
  { id: 'projects', label: 'Projects', href: '#/', show: () => true },
  { id: 'class', label: 'Class', href: '#/class', show: (info) => info.role === 'instructor', screen: ClassPage },
];

function SignIn({ message, onSignedIn }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState(message);
  const [busy, setBusy] = useState(false);
  useEffect(() => setError(message), [message]);
  const submit = async (e) => {
    e.preventDefault();
    const value = key.trim();
    if (!value) { setError('Enter your training key.'); return; }
    setBusy(true);
    try {
      const info = await portal.session(value);
      const { resources } = await portal.resources(value);
      const prediction = resources.find((r) => r.kind === 'prediction');
      session.save(value, prediction && prediction.key);
      setKey('');
      onSignedIn(info, resources);
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? REFUSED : err.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="signin" id="main">
    <form class="signin-card" onSubmit=${submit} aria-labelledby="signin-title" novalidate>
      <div class="brand-large">${icon('eye')} Custom Vision <span class="brand-tag">cvlab</span></div>
      <h1 id="signin-title">Sign in</h1>
      <p>Azure's portal signs you in with your Microsoft account and lets you pick a resource. Here there is one
        local resource per workspace: sign in with its <strong>training key</strong>, printed by <code>cvlab
        serve</code> ("Training key:"), or your seat's key from the workshop handout.</p>
      ${error && html`<div class="alert error" role="alert">${error}</div>`}
      <label for="training-key">Training key</label>
      <input id="training-key" type="password" autocomplete="off" spellcheck="false" value=${key}
        onInput=${(e) => setKey(e.currentTarget.value)} autofocus />
      <button type="submit" class="primary" disabled=${busy}>${busy ? 'Signing in…' : 'Sign in'}</button>
      <p class="muted small">The key stays in this browser tab only (sessionStorage) and travels in the
        Training-Key header, as the SDK sends it; it is never put in a URL.</p>
    </form>
  </main>`;
}

function TopBar({ route, right }) {
  const app = useApp();
  const [menu, setMenu] = useState(false);
  const tail = session.trainingKey.slice(-4);
  return html`<header class="topbar">
    <a class="brand" href="#/" aria-label="Projects Gallery" title="Projects Gallery">
      ${icon('eye')}<span class="brand-name">Custom Vision</span><span class="brand-tag">cvlab</span></a>
    <nav class="topnav" aria-label="Portal">
      ${TOP_SCREENS.filter((s) => s.show(app.info)).map((s) => html`<a href=${s.href}
        aria-current=${(route.path[0] || 'projects') === s.id || (s.id === 'projects' && route.path[0] === 'projects')
          ? 'page' : undefined}>${s.label}</a>`)}
    </nav>
    <span class="spacer"></span>
    <${UploadIndicator} />
    ${right}
    <div class="account">
      <button type="button" class="icon-button" aria-haspopup="true" aria-expanded=${menu}
        aria-label="Account" onClick=${() => setMenu(!menu)}>${app.info.seat || app.info.role}</button>
      ${menu && html`<div class="menu" role="menu">
        <p class="muted small">Signed in with training key …${tail}${app.info.seat ? ` (seat ${app.info.seat})` : ''}
          · tier ${app.info.tier}</p>
        <button type="button" role="menuitem" onClick=${() => { setMenu(false); app.signOut(); }}>Sign out</button>
      </div>`}
    </div>
  </header>`;
}

function App() {
  const route = useRoute();
  const [state, setState] = useState({ status: session.trainingKey ? 'checking' : 'signed-out', message: null });
  const signOut = useCallback((message = null) => {
    session.clear();
    setState({ status: 'signed-out', message });
  }, []);
  useEffect(() => onKeyRefused(() => signOut(EXPIRED)), [signOut]);
  useEffect(() => {
    if (state.status !== 'checking') return;
    Promise.all([portal.session(session.trainingKey), portal.resources(session.trainingKey)]).then(
      ([info, { resources }]) => setState({ status: 'signed-in', info, resources }),
      (err) => signOut(err.status === 401 ? EXPIRED : err.message));
  }, [state.status]);
  if (state.status === 'checking') return html`<main class="loading" aria-busy="true">Signing in…</main>`;
  if (state.status === 'signed-out') {
    return html`<${SignIn} message=${state.message}
      onSignedIn=${(info, resources) => setState({ status: 'signed-in', info, resources })} />`;
  }
  const app = { info: state.info, resources: state.resources, signOut: () => signOut() };
  const [first, projectId, tab] = route.path;
  let screen;
  const top = TOP_SCREENS.find((s) => s.screen && s.id === first);
  if (top) {
    screen = html`<${top.screen} TopBar=${TopBar} route=${route} />`;
  } else if (first === 'projects' && projectId) {
    screen = html`<${ProjectPage} key=${projectId} projectId=${projectId} tab=${tab || 'images'} query=${route.query}
      TopBar=${TopBar} route=${route} />`;
  } else {
    screen = html`<${Gallery} TopBar=${TopBar} route=${route} />`;
  }
  return html`<${AppContext.Provider} value=${app}>${screen}<${Toasts} /><${AskHost} /></${AppContext.Provider}>`;
}

render(html`<${App} />`, document.getElementById('app'));
