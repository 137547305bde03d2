// Project Settings (the gear on a project page): name, description, Project Id, the training resource's key and
// endpoint, project type, classification type, domain, export capabilities, "Save Changes". Azure's rules (no change
// of project type, a compact domain to export) are the service's: their refusals are shown as they come.
import { training } from './api.js';
import { useApp, useProject } from './context.js';
import { ClassificationTypeChoice, DomainChoice, ExportCapabilities, ProjectTypeChoice } from './gallery.js';
import { html, navigate, useState } from './lib.js';
import { CopyField, ErrorText, ask, icon, toast } from './ui.js';

export function ProjectSettings() {
  const ctx = useProject();
  const app = useApp();
  const p = ctx.project;
  const catalogue = ctx.catalogue || [];
  const trainingResource = app.resources.find((r) => r.kind === 'training');
  const [form, setForm] = useState({ name: p.name, description: p.description || '', type: ctx.projectType,
    classificationType: p.settings.classificationType || 'Multiclass', domainId: p.settings.domainId,
    exportTo: (p.settings.targetExportPlatforms || []).includes('VAIDK') ? 'VAIDK' : '' });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (patch) => setForm((f) => ({ ...f, ...patch }));
  const domain = catalogue.find((d) => d.id === form.domainId);
  const save = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const platforms = domain && domain.exportable ? (form.exportTo ? [form.exportTo] : []) : [];
      const updated = await training.updateProject(p.id, { name: form.name, description: form.description,
        settings: { domainId: form.domainId, classificationType: form.classificationType,
          targetExportPlatforms: platforms } });
      ctx.setProject(updated);
      toast('Project settings saved');
    } catch (err) { setError(err); }
    setBusy(false);
  };
  const remove = async () => {
    if (!await ask(`Delete the project "${p.name}" with all its images, tags and iterations?`,
      { confirmLabel: 'Delete project' })) return;
    try {
      await training.deleteProject(p.id);
      toast(`Project ${p.name} deleted`);
      navigate([]);
    } catch (err) { setError(err); }
  };
  const typeOf = (id) => (catalogue.find((d) => d.id === id) || {}).type;
  return html`<main class="page settings" id="main">
    <form class="settings-form" onSubmit=${save} aria-labelledby="settings-title">
      <h2 id="settings-title">Project Settings</h2>
      <div class="settings-grid">
        <section aria-labelledby="general-title">
          <h3 id="general-title">General</h3>
          <label for="ps-name">Project Name</label>
          <input id="ps-name" required value=${form.name} onInput=${(e) => set({ name: e.currentTarget.value })} />
          <label for="ps-desc">Description</label>
          <textarea id="ps-desc" rows="3" value=${form.description}
            onInput=${(e) => set({ description: e.currentTarget.value })}></textarea>
          <${CopyField} label="Project Id" value=${p.id} />
          <${ProjectTypeChoice} value=${form.type} name="ps-type" onChange=${(t) => set({ type: t,
            domainId: t === typeOf(p.settings.domainId) ? p.settings.domainId
              : (catalogue.find((d) => d.type === t && d.name === 'General') || {}).id })} />
          ${form.type === 'Classification' && html`<${ClassificationTypeChoice} name="ps-ctype"
            value=${form.classificationType} onChange=${(c) => set({ classificationType: c })} />`}
          <${DomainChoice} catalogue=${catalogue} type=${form.type} value=${form.domainId} name="ps-domain"
            onChange=${(id) => set({ domainId: id })} />
          <${ExportCapabilities} domain=${domain} value=${form.exportTo} name="ps-export"
            onChange=${(v) => set({ exportTo: v })} />
          <p class="muted small">You can change the domain within the same project type without tagging again; an
            iteration exports only when it was trained on a compact domain, so train again after switching.</p>
        </section>
        <section aria-labelledby="resources-title">
          <h3 id="resources-title">Resources</h3>
          <p><strong>${trainingResource.name}</strong> <span class="muted small">(training, ${trainingResource.pricingTier})</span></p>
          <${CopyField} label="Key" value=${trainingResource.key} secret />
          <${CopyField} label="Endpoint" value=${trainingResource.endpoint} />
        </section>
      </div>
      <${ErrorText} error=${error} />
      <div class="buttons left">
        <button type="submit" class="primary" disabled=${busy}>${icon('check')} Save Changes</button>
        <span class="spacer"></span>
        <button type="button" class="danger" onClick=${remove}>${icon('trash')} Delete project</button>
      </div>
    </form>
  </main>`;
}
