// Performance: the iteration rail ("Published" labels, training progress), the Probability and Overlap Threshold
// sliders, the Precision / Recall / AP (mAP) gauges, the per-tag table, cvlab's extras (F1, mAP@[.5:.95], PR
// curves, the held-out view), and Publish, Unpublish, Prediction URL, Export and Delete.
import { portal, predictionUrls, training } from './api.js';
import { isTraining, useApp, useProject } from './context.js';
import { debounce, elapsed, formatDate, html, navigate, pct, useEffect, useInterval, useMemo, useRef, useState } from './lib.js';
import { CopyField, Dialog, ErrorText, Extra, Gauge, Notice, Progress, Slider, ask, icon, toast } from './ui.js';

const MS_METRICS = 'https://learn.microsoft.com/azure/ai-services/custom-vision-service/getting-started-build-a-classifier#evaluate-the-classifier';

export function Performance() {
  const ctx = useProject();
  const pid = ctx.project.id;
  const detection = ctx.projectType === 'ObjectDetection';
  const iterations = [...ctx.iterations].sort((a, b) => String(b.created).localeCompare(String(a.created)));
  const chosen = iterations.find((i) => i.id === ctx.query.iteration) || iterations[0] || null;
  const [threshold, setThreshold] = useState(50);
  const [overlap, setOverlap] = useState(50);
  const [dialog, setDialog] = useState(null);
  const [error, setError] = useState(null);
  const select = (it) => navigate(['projects', pid, 'performance'], { iteration: it.id }, { replace: true });
  useEffect(() => { ctx.reloadTags().catch(() => {}); ctx.reloadIterations().catch(() => {}); }, [pid]);
  if (!iterations.length) {
    return html`<main class="page" id="main"><${Notice}>This project has no iterations yet. Tag your images, then
      select <strong>Train</strong>.</${Notice}>
      <p><button type="button" class="primary" onClick=${ctx.openTrain}>Train</button></p></main>`;
  }
  const unpublish = async () => {
    try {
      await training.unpublishIteration(pid, chosen.id);
      await ctx.reloadIterations();
      toast(`${chosen.name} unpublished`);
    } catch (err) { setError(err); }
  };
  const remove = async () => {
    if (!await ask(`Delete ${chosen.name}? Its model, performance and exports are deleted (training images stay).`)) return;
    try {
      await training.deleteIteration(pid, chosen.id);
      await ctx.reloadIterations();
      toast(`${chosen.name} deleted`);
      navigate(['projects', pid, 'performance'], {}, { replace: true });
    } catch (err) { setError(err); }
  };
  const done = chosen.status === 'Completed';
  return html`<main class="perf" id="main">
    <aside class="rail" aria-label="Iterations">
      <h2>Iterations</h2>
      <ul>
        ${iterations.map((it) => html`<li key=${it.id}>
          <button type="button" class="rail-item" aria-current=${it.id === chosen.id ? 'true' : undefined}
            onClick=${() => select(it)}>
            <span class="rail-name">${it.name}</span>
            ${it.publishName && html`<span class="badge published">Published</span>`}
            <span class="rail-meta">${isTraining(it) ? html`<span class="spinner" aria-hidden="true"></span> ${it.status === 'Queued' ? 'Queued' : 'Training…'}`
              : it.status === 'Failed' ? 'Failed' : `${it.trainingType === 'Advanced' ? 'Advanced' : 'Quick'} · ${formatDate(it.trainedAt)}`}</span>
            ${it.publishName && html`<span class="rail-meta">as ${it.publishName}</span>`}
          </button></li>`)}
      </ul>
    </aside>
    <section class="perf-main" aria-label=${chosen.name}>
      <div class="perf-toolbar">
        <div class="sliders">
          <${Slider} label="Probability Threshold" value=${threshold} onInput=${setThreshold}
            help="Minimum probability for a prediction to count." />
          ${detection && html`<${Slider} label="Overlap Threshold" value=${overlap} onInput=${setOverlap}
            help="Minimum overlap (IoU) between a predicted and a tagged box." />`}
        </div>
        <div class="actions">
          ${chosen.publishName
            ? html`<button type="button" class="secondary" onClick=${unpublish}>Unpublish</button>`
            : html`<button type="button" class="primary" disabled=${!done} onClick=${() => setDialog('publish')}>
                ${icon('check')} Publish</button>`}
          <button type="button" class="secondary" disabled=${!chosen.publishName}
            title=${chosen.publishName ? '' : 'Publish the iteration first'}
            onClick=${() => setDialog('url')}>${icon('link')} Prediction URL</button>
          <button type="button" class="secondary" disabled=${!done} onClick=${() => setDialog('export')}>
            ${icon('download')} Export</button>
          <button type="button" class="danger" onClick=${remove}>${icon('trash')} Delete</button>
        </div>
      </div>
      <${ErrorText} error=${error} />
      <h2 class="iteration-title">${chosen.name}
        <span class="muted small">${['', chosen.trainingType === 'Advanced' ? `Advanced (${chosen.reservedBudgetInHours} h)` : 'Quick',
          ((ctx.catalogue || []).find((d) => d.id === chosen.domainId) || {}).name, chosen.classificationType]
          .filter((x, i) => i === 0 || x).join(' · ')}</span></h2>
      ${isTraining(chosen) && html`<${TrainingProgress} iteration=${chosen} />`}
      ${chosen.status === 'Failed' && html`<div class="alert error" role="alert"><strong>Training failed: </strong>
        ${chosen.trainingErrorDetails || 'no reason was recorded'}</div>`}
      ${done && html`<${Metrics} iteration=${chosen} threshold=${threshold / 100} overlap=${overlap / 100}
        detection=${detection} />`}
    </section>
    ${dialog === 'publish' && html`<${PublishDialog} iteration=${chosen} onClose=${() => setDialog(null)} />`}
    ${dialog === 'url' && html`<${PredictionUrlDialog} iteration=${chosen} onClose=${() => setDialog(null)} />`}
    ${dialog === 'export' && html`<${ExportDialog} iteration=${chosen} onClose=${() => setDialog(null)} />`}
  </main>`;
}

function TrainingProgress({ iteration }) {
  const [now, setNow] = useState(Date.now());
  useInterval(() => setNow(Date.now()), 1000);
  return html`<div class="training-progress">
    <${Progress} label="Training progress"
      text=${iteration.status === 'Queued' ? 'Waiting for its turn in the training queue…'
        : `Training… ${elapsed(iteration.created, now)} so far`} />
    <p class="muted small">You can leave this page: training goes on, and this page shows the result when you come
      back. Training cannot be cancelled.</p>
  </div>`;
}

function useMetrics(pid, itId, threshold, overlap) {
  const [state, setState] = useState({ perf: null, extras: null, error: null, extrasError: null });
  const [split, setSplit] = useState('cv');
  const first = useRef(true);
  const fetchNow = useMemo(() => {
    let asked = 0;
    return (t, o, s) => {
      const mine = ++asked;  // answers to older slider positions are dropped
      training.getIterationPerformance(pid, itId, t, o).then(
        (perf) => mine === asked && setState((st) => ({ ...st, perf, error: null })),
        (error) => mine === asked && setState((st) => ({ ...st, error })));
      portal.extras(pid, itId, t, o, s).then(  // cvlab's extras follow; Azure's numbers do not wait for them
        (extras) => mine === asked && setState((st) => ({ ...st, extras, extrasError: null })),
        (extrasError) => mine === asked && setState((st) => ({ ...st, extrasError })));
    };
  }, [pid, itId]);
  const later = useMemo(() => debounce(fetchNow, 120), [fetchNow]);
  useEffect(() => { first.current = true; }, [fetchNow]);
  useEffect(() => {
    if (first.current) { first.current = false; fetchNow(threshold, overlap, split); } else later(threshold, overlap, split);
  }, [fetchNow, threshold, overlap, split]);
  useEffect(() => () => later.cancel(), [later]);
  return { ...state, split, setSplit };
}

function Metrics({ iteration, threshold, overlap, detection }) {
  const ctx = useProject();
  const m = useMetrics(ctx.project.id, iteration.id, threshold, overlap);
  const counts = Object.fromEntries(ctx.tags.map((t) => [t.id, t.imageCount]));
  if (m.error) return html`<${ErrorText} error=${m.error} />`;
  if (!m.perf) return html`<p class="muted" aria-busy="true">Computing the metrics…</p>`;
  const p = m.perf;
  const ap = detection ? 'mAP' : 'AP';
  const heldOut = m.split === 'holdout' && m.extras;
  const shown = heldOut ? m.extras.performance : p;
  return html`
    <div class="gauges" role="group" aria-label="Performance">
      <${Gauge} label="Precision" value=${shown.precision} />
      <${Gauge} label="Recall" value=${shown.recall} />
      <${Gauge} label=${ap} value=${shown.averagePrecision} />
    </div>
    <p class="muted small">${heldOut ? 'Measured on the images you held out (cvlab extra).'
      : html`Measured, as on Azure, on your training images (${m.extras && m.extras.kFolds > 1
        ? `${m.extras.kFolds}-fold cross-validation` : 'a validation split held back from training'}), at a
        probability threshold of ${pct(threshold, 0)}${detection ? ` and an overlap threshold of ${pct(overlap, 0)}` : ''}.${' '}
        <a href=${MS_METRICS} rel="noreferrer" target="_blank">What these mean</a>.`}</p>
    <h3>Performance Per Tag</h3>
    <table class="table per-tag">
      <thead><tr><th scope="col">Tag</th><th scope="col">Precision</th><th scope="col">Recall</th>
        <th scope="col">${detection ? 'A.P.' : 'A.P.'}</th><th scope="col">Image count</th></tr></thead>
      <tbody>
        ${shown.perTagPerformance.map((t) => html`<tr key=${t.id}>
          <th scope="row">${t.name}</th><td>${pct(t.precision)}</td><td>${pct(t.recall)}</td>
          <td>${pct(t.averagePrecision)}</td><td>${counts[t.id] ?? ''}</td></tr>`)}
      </tbody>
    </table>
    <${Extras} m=${m} detection=${detection} />`;
}

function Extras({ m, detection }) {
  const x = m.extras;
  return html`<section class="extras" aria-labelledby="extras-title">
    <h3 id="extras-title">More metrics <${Extra} /></h3>
    <p class="muted small">Not on Azure's Performance page: cvlab computes them from the same predictions.</p>
    ${m.extrasError && html`<${ErrorText} error=${m.extrasError} />`}
    ${x && html`
      <div class="split-choice" role="group" aria-label="Evaluated on">
        <span>Evaluated on:</span>
        <button type="button" class="toggle" aria-pressed=${m.split === 'cv'} onClick=${() => m.setSplit('cv')}>
          Training images (as Azure)</button>
        <button type="button" class="toggle" aria-pressed=${m.split === 'holdout'} disabled=${!x.splits.includes('holdout')}
          title=${x.splits.includes('holdout') ? '' : 'Hold out images (metadata holdout=true) and train again'}
          onClick=${() => m.setSplit('holdout')}>Held-out images</button>
      </div>
      <div class="gauges small">
        <${Gauge} label="F1" value=${x.f1} extra />
        ${detection && html`<${Gauge} label="mAP@[.5:.95]" value=${x.map5095} extra />`}
      </div>
      <table class="table">
        <thead><tr><th scope="col">Tag</th><th scope="col">F1</th><th scope="col">True positives</th>
          <th scope="col">False positives</th><th scope="col">False negatives</th></tr></thead>
        <tbody>${x.perTag.map((t) => html`<tr key=${t.id}><th scope="row">${t.name}</th><td>${pct(t.f1)}</td>
          <td>${t.truePositives}</td><td>${t.falsePositives}</td><td>${t.falseNegatives}</td></tr>`)}</tbody>
      </table>
      <${PrCurves} tags=${x.perTag} threshold=${x.threshold} />`}
  </section>`;
}

const COLOURS = ['#2f6fd6', '#d6452f', '#2f9e58', '#9b4fd6', '#d69a2f', '#2fa7b8', '#b82f7d', '#6b6b6b'];

function PrCurves({ tags, threshold }) {
  const W = 320;
  const H = 220;
  const pad = 34;
  const X = (r) => pad + r * (W - pad - 10);
  const Y = (p) => H - pad - p * (H - pad - 10);
  return html`<figure class="pr-curves">
    <figcaption>Precision-recall curve per tag (the dot: the probability threshold)</figcaption>
    <svg viewBox=${`0 0 ${W} ${H}`} role="img" aria-label="Precision-recall curves">
      <line x1=${X(0)} y1=${Y(0)} x2=${X(1)} y2=${Y(0)} class="axis" />
      <line x1=${X(0)} y1=${Y(0)} x2=${X(0)} y2=${Y(1)} class="axis" />
      <text x=${X(0.5)} y=${H - 6} class="axis-label">Recall</text>
      <text x="10" y=${Y(0.5)} class="axis-label" transform=${`rotate(-90 10 ${Y(0.5)})`}>Precision</text>
      ${[0, 0.5, 1].map((v) => html`<text key=${`x${v}`} x=${X(v)} y=${Y(0) + 14} class="tick">${v}</text>
        <text key=${`y${v}`} x=${X(0) - 6} y=${Y(v) + 4} class="tick end">${v}</text>`)}
      ${tags.map((t, i) => {
        const c = t.curve;
        const pts = c.recall.map((r, k) => (r === null || c.precision[k] === null ? null : `${X(r)},${Y(c.precision[k])}`))
          .filter(Boolean);
        const at = c.thresholds.findIndex((v) => v !== null && v < threshold);
        const k = at < 0 ? c.thresholds.length - 1 : at - 1;
        const dot = k >= 0 && c.recall[k] !== null ? [X(c.recall[k]), Y(c.precision[k])] : null;
        return html`<g key=${t.id} stroke=${COLOURS[i % COLOURS.length]} fill=${COLOURS[i % COLOURS.length]}>
          <polyline points=${pts.join(' ')} fill="none" stroke-width="2" />
          ${dot && html`<circle cx=${dot[0]} cy=${dot[1]} r="4" />`}</g>`;
      })}
    </svg>
    <ul class="legend-list">${tags.map((t, i) => html`<li key=${t.id}><span class="swatch"
      style=${{ background: COLOURS[i % COLOURS.length] }}></span>${t.name}</li>`)}</ul>
  </figure>`;
}

function PublishDialog({ iteration, onClose }) {
  const ctx = useProject();
  const app = useApp();
  const targets = app.resources.filter((r) => r.kind === 'prediction');
  const [name, setName] = useState(iteration.name.replace(/\s+/g, ''));
  const [target, setTarget] = useState(targets[0] ? targets[0].resourceId : '');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const publish = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      await training.publishIteration(ctx.project.id, iteration.id, name.trim(), target);
      await ctx.reloadIterations();
      toast(`${iteration.name} published as ${name.trim()}`);
      onClose();
    } catch (err) { setError(err); setBusy(false); }
  };
  return html`<${Dialog} title="Publish Model" onClose=${onClose}>
    <form class="form" onSubmit=${publish}>
      <label for="pub-name">Model name</label>
      <input id="pub-name" value=${name} required onInput=${(e) => setName(e.currentTarget.value)} />
      <label for="pub-res">Prediction resource</label>
      <select id="pub-res" value=${target} onChange=${(e) => setTarget(e.currentTarget.value)}>
        ${targets.map((r) => html`<option key=${r.resourceId} value=${r.resourceId}>${r.name}</option>`)}
      </select>
      <p class="muted small">Applications call the published model by this name with the prediction resource's key.</p>
      <${ErrorText} error=${error} />
      <div class="buttons">
        <button type="button" class="secondary" onClick=${onClose}>Cancel</button>
        <button type="submit" class="primary" disabled=${busy || !name.trim()}>Publish</button>
      </div>
    </form>
  </${Dialog}>`;
}

function PredictionUrlDialog({ iteration, onClose }) {
  const ctx = useProject();
  const app = useApp();
  const res = app.resources.find((r) => r.kind === 'prediction');
  const urls = predictionUrls(res.endpoint, ctx.project.id, iteration.publishName, ctx.projectType);
  return html`<${Dialog} title="How to use the Prediction API" onClose=${onClose} size="wide">
    <h3>If you have an image URL:</h3>
    <${CopyField} label="Prediction URL for an image URL" value=${urls.url} />
    <p>Set <strong>Prediction-Key</strong> Header to : <code class="key">${res.key}</code></p>
    <p>Set <strong>Content-Type</strong> Header to : <code>application/json</code></p>
    <p>Set Body to : <code>{"Url": "https://example.com/image.png"}</code></p>
    <h3>If you have an image file:</h3>
    <${CopyField} label="Prediction URL for an image file" value=${urls.image} />
    <p>Set <strong>Prediction-Key</strong> Header to : <code class="key">${res.key}</code></p>
    <p>Set <strong>Content-Type</strong> Header to : <code>application/octet-stream</code></p>
    <p>Set Body to : <code>&lt;image file&gt;</code></p>
    <p class="muted small">With the SDK: <code>CustomVisionPredictionClient("${res.endpoint}", ApiKeyCredentials(in_headers=
      {"Prediction-key": key})).${ctx.projectType === 'ObjectDetection' ? 'detect_image' : 'classify_image'}("${ctx.project.id}",
      "${iteration.publishName}", image_bytes)</code></p>
  </${Dialog}>`;
}

export const PLATFORMS = [
  { platform: 'TensorFlow', label: 'TensorFlow', sub: 'Android', flavors: [['TensorFlowLite', 'TensorFlow Lite'],
    ['TensorFlowNormal', 'TensorFlow'], ['TensorFlowLiteFloat16', 'TensorFlow Lite float16 (cvlab extra)'],
    ['TensorFlowLiteInt8', 'TensorFlow Lite int8 (cvlab extra)']] },
  { platform: 'CoreML', label: 'CoreML', sub: 'iOS 11' },
  { platform: 'ONNX', label: 'ONNX', sub: 'Windows ML, Android and iOS', flavors: [['ONNX12', 'ONNX 1.2'],
    ['ONNX10', 'ONNX 1.0'], ['OnnxInt8', 'ONNX int8 (cvlab extra)']] },
  { platform: 'DockerFile', label: 'Dockerfile', sub: 'Azure IoT Edge, Azure Functions, AzureML',
    flavors: [['Linux', 'Linux'], ['Windows', 'Windows'], ['ARM', 'ARM (Raspberry Pi 3)']] },
  { platform: 'VAIDK', label: 'Vision AI Dev Kit', sub: 'Vision AI Developer Kit' },
  { platform: 'OpenVino', label: 'OpenVINO', sub: 'Intel OpenVINO' },
];

function ExportDialog({ iteration, onClose }) {
  const ctx = useProject();
  const pid = ctx.project.id;
  const [exports, setExports] = useState(null);
  const [choice, setChoice] = useState(null);
  const [flavor, setFlavor] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const load = () => training.getExports(pid, iteration.id).then(setExports, setError);
  useEffect(() => { load(); }, [iteration.id]);
  const running = (exports || []).some((e) => e.status === 'Exporting');
  useInterval(load, 1500, running);
  const start = async () => {
    setBusy(true);
    setError(null);
    try {
      await training.exportIteration(pid, iteration.id, choice.platform, flavor || undefined);
      await load();
    } catch (err) { setError(err); }
    setBusy(false);
  };
  const pick = (p) => { setChoice(p); setFlavor(p.flavors ? p.flavors[0][0] : ''); setError(null); };
  const label = (e) => {
    const p = PLATFORMS.find((x) => x.platform === e.platform);
    const f = p && p.flavors && p.flavors.find((x) => x[0] === e.flavor);
    return `${p ? p.label : e.platform}${f ? ` (${f[1]})` : e.flavor ? ` (${e.flavor})` : ''}`;
  };
  return html`<${Dialog} title="Choose your platform" onClose=${onClose} size="wide">
    ${!iteration.exportable && html`<${Notice} kind="warning">${iteration.name} was trained on a domain that is not
      compact: only iterations of compact domains can be exported (Project Settings > Domains, then train again).
      </${Notice}>`}
    <ul class="platforms">
      ${PLATFORMS.map((p) => html`<li key=${p.platform}><button type="button" class="platform"
        aria-pressed=${choice === p} onClick=${() => pick(p)}>
        <span class="platform-name">${p.label}</span><span class="muted small">${p.sub}</span></button></li>`)}
    </ul>
    ${choice && html`<div class="export-choice">
      ${choice.flavors && html`<label for="flavor" class="field-label">Flavor</label>
        <select id="flavor" value=${flavor} onChange=${(e) => setFlavor(e.currentTarget.value)}>
          ${choice.flavors.map(([v, l]) => html`<option key=${v} value=${v}>${l}</option>`)}</select>`}
      <button type="button" class="primary" disabled=${busy} onClick=${start}>${icon('download')} Export</button>
    </div>`}
    <${ErrorText} error=${error} />
    ${exports && exports.length > 0 && html`<h3>Exports of ${iteration.name}</h3>
      <ul class="exports">${exports.map((e, i) => html`<li key=${i}>
        <span>${label(e)}</span>
        ${e.status === 'Exporting' && html`<${Progress} label=${`Exporting ${label(e)}`} text="Exporting…" />`}
        ${e.status === 'Done' && html`<a class="button primary" href=${e.downloadUri} download>${icon('download')} Download</a>`}
        ${e.status === 'Failed' && html`<span class="alert error inline">Failed</span>`}
      </li>`)}</ul>
      ${running && html`<p class="muted small">You can close this window: the export goes on, and it is listed
        here when you come back.</p>`}`}
    <p class="muted small">An iteration exports once per platform and flavor; its download link is fresh each time this
      list loads (it expires after an hour, like Azure's).</p>
  </${Dialog}>`;
}
