// A project: its header (tabs Training Images / Performance / Predictions, Train, Quick Test, the settings gear) and
// the data every tab shares (project, tags, iterations, domains), polled while an iteration trains.
import { domains, training } from './api.js';
import { ProjectContext, isTraining } from './context.js';
import { elapsed, html, useCallback, useEffect, useInterval, useState } from './lib.js';
import { Performance } from './performance.js';
import { Predictions } from './predictions.js';
import { QuickTestDialog } from './quick-test.js';
import { ProjectSettings } from './settings.js';
import { TrainDialog } from './train.js';
import { TrainingImages } from './training-images.js';
import { ErrorText, icon } from './ui.js';

const TABS = [['images', 'Training Images'], ['performance', 'Performance'], ['predictions', 'Predictions']];

export function ProjectPage({ projectId, tab, query, TopBar, route }) {
  const [state, setState] = useState({ project: null, tags: [], iterations: [], catalogue: [], error: null });
  const [dialog, setDialog] = useState(null);
  const [now, setNow] = useState(Date.now());
  const reloadTags = useCallback(async () => {
    const tags = await training.getTags(projectId);
    setState((s) => ({ ...s, tags }));
    return tags;
  }, [projectId]);
  const reloadIterations = useCallback(async () => {
    const iterations = await training.getIterations(projectId);
    setState((s) => ({ ...s, iterations }));
    return iterations;
  }, [projectId]);
  const reloadProject = useCallback(async () => {
    const project = await training.getProject(projectId);
    setState((s) => ({ ...s, project }));
    return project;
  }, [projectId]);
  useEffect(() => {
    Promise.all([training.getProject(projectId), training.getTags(projectId), training.getIterations(projectId),
      domains()]).then(([project, tags, iterations, catalogue]) => setState({ project, tags, iterations, catalogue,
      error: null }), (error) => setState((s) => ({ ...s, error })));
  }, [projectId]);
  const training_ = state.iterations.filter(isTraining);
  useInterval(() => { reloadIterations().catch(() => {}); setNow(Date.now()); }, 2000, training_.length > 0);
  const gear = html`<a class="icon-button" href=${`#/projects/${projectId}/settings`} aria-label="Project Settings"
    title="Project Settings">${icon('gear')}</a>`;
  if (state.error) {
    return html`<${TopBar} route=${route} /><main class="page" id="main"><${ErrorText} error=${state.error} />
      <p><a href="#/">Back to the projects</a></p></main>`;
  }
  if (!state.project) return html`<${TopBar} route=${route} /><main class="page loading" aria-busy="true">Loading…</main>`;
  const domain = state.catalogue.find((d) => d.id === state.project.settings.domainId) || null;
  const ctx = { ...state, domain, projectType: domain ? domain.type : 'Classification', reloadTags, reloadIterations,
    reloadProject, setProject: (project) => setState((s) => ({ ...s, project })), query, tab,
    openTrain: () => setDialog('train'), openQuickTest: () => setDialog('quicktest') };
  let body;
  if (tab === 'performance') body = html`<${Performance} />`;
  else if (tab === 'predictions') body = html`<${Predictions} />`;
  else if (tab === 'settings') body = html`<${ProjectSettings} />`;
  else body = html`<${TrainingImages} />`;
  return html`<${ProjectContext.Provider} value=${ctx}>
    <${TopBar} route=${route} right=${gear} />
    <div class="project-head">
      <h1 class="project-name">${state.project.name}</h1>
      <nav class="tabs" aria-label="Project">
        ${TABS.map(([id, label]) => html`<a key=${id} href=${`#/projects/${projectId}/${id}`}
          aria-current=${tab === id ? 'page' : undefined}>${label}</a>`)}
      </nav>
      <span class="spacer"></span>
      ${training_.map((it) => html`<a class="training-badge" key=${it.id} role="status"
        href=${`#/projects/${projectId}/performance?iteration=${it.id}`}>
        <span class="spinner" aria-hidden="true"></span>${it.status === 'Queued' ? `${it.name} queued` :
        `Training ${it.name}… ${elapsed(it.created, now)}`}</a>`)}
      <button type="button" class="primary" onClick=${() => setDialog('train')}>${icon('train')} Train</button>
      <button type="button" class="secondary" onClick=${() => setDialog('quicktest')}>${icon('flask')} Quick Test</button>
    </div>
    ${body}
    ${dialog === 'train' && html`<${TrainDialog} onClose=${() => setDialog(null)} />`}
    ${dialog === 'quicktest' && html`<${QuickTestDialog} onClose=${() => setDialog(null)} />`}
  </${ProjectContext.Provider}>`;
}
