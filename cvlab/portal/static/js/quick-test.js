// Quick Test: an image URL or a local file, an iteration, the predicted tags with their probabilities, and for
// detection the boxes with a "Predicted Object Threshold" slider. The tested image lands in Predictions.
import { training } from './api.js';
import { useProject } from './context.js';
import { html, latestCompleted, pct, useEffect, useRef, useState } from './lib.js';
import { Dialog, ErrorText, Notice, Progress, Slider, icon } from './ui.js';

export function QuickTestDialog({ onClose }) {
  const ctx = useProject();
  const pid = ctx.project.id;
  const detection = ctx.projectType === 'ObjectDetection';
  const completed = ctx.iterations.filter((i) => i.status === 'Completed');
  const latest = latestCompleted(ctx.iterations);
  const [iteration, setIteration] = useState(latest ? latest.id : '');
  const [url, setUrl] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [result, setResult] = useState(null);
  const [src, setSrc] = useState(null);
  const [threshold, setThreshold] = useState(50);
  const input = useRef(null);
  useEffect(() => () => { if (src && src.startsWith('blob:')) URL.revokeObjectURL(src); }, [src]);
  const run = async (send, preview) => {
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      const res = await send();
      setResult(res);
      if (preview) setSrc(preview);
      else {  // an image from another address is shown from its stored copy (the page loads images from here only)
        const q = await training.queryPredictions(pid, { orderBy: 'Newest', maxCount: 20, iterationId: res.iteration });
        const stored = q.results.find((p) => p.id === res.id);
        setSrc(stored ? stored.resizedImageUri : null);
      }
    } catch (err) { setError(err); }
    setBusy(false);
  };
  const testUrl = (e) => {
    e.preventDefault();
    if (!url.trim()) { setError({ message: 'Enter the URL of an image.' }); return; }
    run(() => training.quickTestImageUrl(pid, url.trim(), iteration || undefined), null);
  };
  const testFile = (file) => {
    if (!file) return;
    run(() => training.quickTestImage(pid, file, iteration || undefined), URL.createObjectURL(file));
  };
  const preds = result ? [...result.predictions].sort((a, b) => b.probability - a.probability) : [];
  const boxes = preds.filter((p) => p.boundingBox && p.probability * 100 >= threshold);
  return html`<${Dialog} title="Quick Test" onClose=${onClose} size="wide">
    ${!completed.length && html`<${Notice} kind="warning">This project has no trained iteration yet: select Train
      first.</${Notice}>`}
    <div class="quicktest">
      <div class="quicktest-input">
        <form class="url-row" onSubmit=${testUrl}>
          <label for="qt-url">Image URL</label>
          <div class="copy-row">
            <input id="qt-url" type="url" placeholder="https://…" value=${url}
              onInput=${(e) => setUrl(e.currentTarget.value)} />
            <button type="submit" class="primary" aria-label="Quick test image URL" title="Quick test image URL"
              disabled=${busy || !completed.length}>${icon('arrow')}</button>
          </div>
        </form>
        <p class="or">or</p>
        <input ref=${input} type="file" accept="image/*" class="visually-hidden" tabindex="-1" aria-hidden="true"
          onChange=${(e) => { testFile(e.currentTarget.files[0]); e.currentTarget.value = ''; }} />
        <button type="button" class="secondary" disabled=${busy || !completed.length}
          onClick=${() => input.current.click()}>Browse local files</button>
        <p class="muted small">File formats accepted: jpg, png, bmp, gif, webp; up to 4 MB.</p>
        <label for="qt-iteration" class="field-label">Iteration</label>
        <select id="qt-iteration" value=${iteration} onChange=${(e) => setIteration(e.currentTarget.value)}>
          ${completed.map((i) => html`<option key=${i.id} value=${i.id}>${i.name}${i.publishName ? ` (published as ${i.publishName})` : ''}</option>`)}
        </select>
      </div>
      <div class="quicktest-result">
        ${busy && html`<${Progress} label="Testing" text="Predicting…" />`}
        <${ErrorText} error=${error} />
        ${result && html`
          <div class="qt-image">
            ${src ? html`<div class="boxed">
                <img src=${src} alt="Tested image" />
                ${detection && boxes.map((b, k) => html`<div class="box" key=${k} style=${{ left: `${b.boundingBox.left * 100}%`,
                  top: `${b.boundingBox.top * 100}%`, width: `${b.boundingBox.width * 100}%`, height: `${b.boundingBox.height * 100}%` }}>
                  <span>${b.tagName} ${pct(b.probability)}</span></div>`)}
              </div>` : html`<p class="muted">(the image is stored in Predictions)</p>`}
          </div>
          ${detection && html`<${Slider} label="Predicted Object Threshold" value=${threshold} onInput=${setThreshold} />`}
          <h3>Predictions</h3>
          <table class="table" aria-label="Predictions">
            <thead><tr><th scope="col">Tag</th><th scope="col">Probability</th></tr></thead>
            <tbody>
              ${(detection ? boxes : preds).map((p, k) => html`<tr key=${k}><td>${p.tagName}</td><td>${pct(p.probability)}</td></tr>`)}
            </tbody>
          </table>
          ${detection && !boxes.length && html`<p class="muted">No object at ${threshold}% or more: lower the threshold.</p>`}
          <p class="muted small">Tested with ${(ctx.iterations.find((i) => i.id === result.iteration) || {}).name};
            the image is saved in Predictions, where you can tag it and add it to training.</p>`}
      </div>
    </div>
  </${Dialog}>`;
}
