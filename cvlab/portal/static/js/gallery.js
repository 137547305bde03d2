// The projects gallery (home): project tiles with search, "New Project", and the settings gear with the resources.
import { domains, portal, training } from './api.js';
import { useApp } from './context.js';
import { formatDate, html, navigate, useEffect, useLoad, useMemo, useState } from './lib.js';
import { CopyField, Dialog, ErrorText, icon } from './ui.js';

const TYPE_LABEL = { Classification: 'Classification', ObjectDetection: 'Object Detection' };

export function Gallery({ TopBar, route }) {
  const projects = useLoad(() => training.getProjects(), []);
  const catalogue = useLoad(() => domains(), []);
  const [search, setSearch] = useState('');
  const [creating, setCreating] = useState(false);
  const [settings, setSettings] = useState(false);
  const byId = useMemo(() => Object.fromEntries((catalogue.data || []).map((d) => [d.id, d])), [catalogue.data]);
  const list = (projects.data || []).filter((p) => {
    const q = search.trim().toLowerCase();
    return !q || p.name.toLowerCase().includes(q) || (p.description || '').toLowerCase().includes(q);
  }).sort((a, b) => String(b.lastModified).localeCompare(String(a.lastModified)));
  const gear = html`<button type="button" class="icon-button" aria-label="Settings" title="Settings"
    onClick=${() => setSettings(true)}>${icon('gear')}</button>`;
  return html`
    <${TopBar} route=${route} right=${gear} />
    <main class="gallery" id="main">
      <div class="gallery-head">
        <h1>Projects</h1>
        <input type="search" class="search" aria-label="Search projects" placeholder="Search projects"
          value=${search} onInput=${(e) => setSearch(e.currentTarget.value)} />
      </div>
      <${ErrorText} error=${projects.error} />
      <ul class="tiles" aria-busy=${projects.loading}>
        <li><button type="button" class="tile tile-new" onClick=${() => setCreating(true)}>
          ${icon('plus')}<span>New Project</span></button></li>
        ${list.map((p) => {
          const d = byId[p.settings.domainId];
          const type = d ? TYPE_LABEL[d.type] : '';
          return html`<li key=${p.id}><a class="tile" href=${`#/projects/${p.id}/images`} aria-label=${p.name}
            aria-describedby=${`tile-${p.id}`}>
            <span class="tile-name">${p.name}</span>
            ${p.description && html`<span class="tile-desc">${p.description}</span>`}
            <span class="tile-meta" id=${`tile-${p.id}`}>${type}${d ? ` · ${d.name}` : ''}</span>
            <span class="tile-meta muted">Modified ${formatDate(p.lastModified)}</span>
          </a></li>`;
        })}
      </ul>
      ${!projects.loading && !list.length && search && html`<p class="muted">No project matches "${search}".</p>`}
    </main>
    ${creating && html`<${NewProjectDialog} catalogue=${catalogue.data || []} onClose=${() => setCreating(false)}
      onCreated=${(p) => { setCreating(false); navigate(['projects', p.id, 'images']); }} />`}
    ${settings && html`<${SettingsDialog} onClose=${() => setSettings(false)} />`}`;
}

/** Domains of one project type, as radio buttons (the create dialog and Project Settings share it). */
export function DomainChoice({ catalogue, type, value, onChange, name = 'domain' }) {
  const list = catalogue.filter((d) => d.type === type && d.enabled);
  return html`<fieldset class="choices">
    <legend>Domains</legend>
    ${list.map((d) => html`<label key=${d.id} class="choice">
      <input type="radio" name=${name} value=${d.id} checked=${value === d.id} onChange=${() => onChange(d.id)} />
      <span>${d.name}</span></label>`)}
  </fieldset>`;
}

export function ExportCapabilities({ domain, value, onChange, name = 'export-capabilities' }) {
  if (!domain || !domain.exportable) return null;
  const vaidk = (domain.exportablePlatforms || []).includes('VAIDK');
  return html`<fieldset class="choices">
    <legend>Export Capabilities</legend>
    <label class="choice"><input type="radio" name=${name} checked=${value !== 'VAIDK'} onChange=${() => onChange('')} />
      <span>Basic platforms (Tensorflow, CoreML, ONNX, ...)</span></label>
    ${vaidk && html`<label class="choice"><input type="radio" name=${name} checked=${value === 'VAIDK'}
      onChange=${() => onChange('VAIDK')} /><span>Vision AI Dev Kit</span></label>`}
  </fieldset>`;
}

export function ClassificationTypeChoice({ value, onChange, name = 'classification-type' }) {
  return html`<fieldset class="choices">
    <legend>Classification Types</legend>
    <label class="choice"><input type="radio" name=${name} checked=${value === 'Multilabel'}
      onChange=${() => onChange('Multilabel')} /><span>Multilabel (Multiple tags per image)</span></label>
    <label class="choice"><input type="radio" name=${name} checked=${value === 'Multiclass'}
      onChange=${() => onChange('Multiclass')} /><span>Multiclass (Single tag per image)</span></label>
  </fieldset>`;
}

export function ProjectTypeChoice({ value, onChange, name = 'project-type' }) {
  return html`<fieldset class="choices">
    <legend>Project Types</legend>
    ${Object.entries(TYPE_LABEL).map(([t, label]) => html`<label class="choice" key=${t}>
      <input type="radio" name=${name} checked=${value === t} onChange=${() => onChange(t)} /><span>${label}</span>
    </label>`)}
  </fieldset>`;
}

function defaultDomain(catalogue, type) {
  return (catalogue.find((d) => d.type === type && d.name === 'General') || {}).id;
}

function NewProjectDialog({ catalogue, onClose, onCreated }) {
  const app = useApp();
  const training_ = app.resources.find((r) => r.kind === 'training');
  const [form, setForm] = useState({ name: '', description: '', type: 'Classification',
    classificationType: 'Multilabel', domainId: defaultDomain(catalogue, 'Classification'), exportTo: '' });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!form.domainId && catalogue.length) setForm((f) => ({ ...f, domainId: defaultDomain(catalogue, f.type) }));
  }, [catalogue.length]);
  const set = (patch) => setForm((f) => ({ ...f, ...patch }));
  const domain = catalogue.find((d) => d.id === form.domainId);
  const create = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const p = await training.createProject({ name: form.name, description: form.description, domainId: form.domainId,
        classificationType: form.type === 'Classification' ? form.classificationType : undefined,
        targetExportPlatforms: domain && domain.exportable && form.exportTo ? [form.exportTo] : undefined });
      onCreated(p);
    } catch (err) { setError(err); } finally { setBusy(false); }
  };
  return html`<${Dialog} title="Create new project" onClose=${onClose}>
    <form class="form" onSubmit=${create}>
      <label for="np-name">Name</label>
      <input id="np-name" required value=${form.name} onInput=${(e) => set({ name: e.currentTarget.value })} autofocus />
      <label for="np-desc">Description</label>
      <textarea id="np-desc" rows="2" value=${form.description}
        onInput=${(e) => set({ description: e.currentTarget.value })}></textarea>
      <label for="np-res">Resource</label>
      <select id="np-res"><option>${training_ ? `${training_.name} [${training_.pricingTier}]` : 'cvlab'}</option></select>
      <${ProjectTypeChoice} value=${form.type}
        onChange=${(t) => set({ type: t, domainId: defaultDomain(catalogue, t), exportTo: '' })} />
      ${form.type === 'Classification' && html`<${ClassificationTypeChoice} value=${form.classificationType}
        onChange=${(c) => set({ classificationType: c })} />`}
      <${DomainChoice} catalogue=${catalogue} type=${form.type} value=${form.domainId}
        onChange=${(id) => set({ domainId: id, exportTo: '' })} />
      <${ExportCapabilities} domain=${domain} value=${form.exportTo} onChange=${(v) => set({ exportTo: v })} />
      <${ErrorText} error=${error} />
      <div class="buttons">
        <button type="button" class="secondary" onClick=${onClose}>Cancel</button>
        <button type="submit" class="primary" disabled=${busy || !form.name.trim()}>Create project</button>
      </div>
    </form>
  </${Dialog}>`;
}

/** The gallery's settings gear: every resource with its key and endpoint, the prediction resource's id. */
function SettingsDialog({ onClose }) {
  const app = useApp();
  const [outbox, setOutbox] = useState(false);
  return html`<${Dialog} title="Settings" onClose=${onClose} size="wide">
    <h3>Resources</h3>
    ${app.resources.map((r) => html`<section class="resource" key=${r.kind} aria-label=${r.name}>
      <h4>${r.name} <span class="muted small">${r.kind === 'training' ? 'Training' : 'Prediction'} · ${r.pricingTier}</span></h4>
      <${CopyField} label="Key" value=${r.key} secret />
      <${CopyField} label="Endpoint" value=${r.endpoint} />
      ${r.resourceId && html`<${CopyField} label="Resource Id" value=${r.resourceId} />`}
    </section>`)}
    <p class="muted small">In cvlab one workspace is one resource: training and prediction share an endpoint; the
      keys differ, as on Azure (a prediction key cannot train).</p>
    <h3>Notification e-mails</h3>
    <p>Training notification e-mails are written to a local outbox (cvlab has no mail server).
      <button type="button" class="secondary" onClick=${() => setOutbox(true)}>${icon('mail')} Open outbox</button></p>
    ${outbox && html`<${OutboxDialog} onClose=${() => setOutbox(false)} />`}
  </${Dialog}>`;
}

export function OutboxDialog({ onClose }) {
  const box = useLoad(() => portal.outbox(), []);
  const [open, setOpen] = useState(null);
  const messages = (box.data && box.data.messages) || [];
  return html`<${Dialog} title="Outbox" onClose=${onClose} size="wide">
    <${ErrorText} error=${box.error} />
    ${box.data && html`<p class="muted small">Folder: <code>${box.data.folder}</code></p>`}
    ${!box.loading && !messages.length && html`<p>No e-mails yet. Ask for one in the Train dialog ("Send me an
      email when training is complete").</p>`}
    <ul class="outbox">
      ${messages.map((m) => html`<li key=${m.id}>
        <button type="button" class="link" aria-expanded=${open === m.id}
          onClick=${() => setOpen(open === m.id ? null : m.id)}>${m.subject}</button>
        <span class="muted small"> to ${m.to} · ${m.date}</span>
        ${open === m.id && html`<pre class="mail">${m.text}</pre>`}
      </li>`)}
    </ul>
  </${Dialog}>`;
}
