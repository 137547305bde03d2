// Predictions: the images sent to the prediction endpoint or Quick Test (stored 30 days), by iteration, sorted;
// hover shows the predicted tags; open one, correct its tags or regions, "Save and close" adds it to training.
import { training } from './api.js';
import { useProject } from './context.js';
import { RegionsPane } from './image-detail.js';
import { html, latestCompleted, pct, plural, useEffect, useRef, useState } from './lib.js';
import { Dialog, ErrorText, Notice, ask, icon, toast } from './ui.js';

const PAGE = 60;
const SHOWN_THRESHOLD = 0.5;  // predictions at or above 50 % count as the predicted tags (the portal's default)

export function Predictions() {
  const ctx = useProject();
  const pid = ctx.project.id;
  const latest = latestCompleted(ctx.iterations);
  const [iteration, setIteration] = useState(ctx.query.iteration || (latest ? latest.id : ''));
  const [order, setOrder] = useState('Suggested');
  const [items, setItems] = useState(null);
  const [token, setToken] = useState(null);
  const [error, setError] = useState(null);
  const [open, setOpen] = useState(null);
  const [reload, setReload] = useState(0);
  const load = async (more = false) => {
    try {
      const q = more && token ? { ...token } : { iterationId: iteration || undefined, orderBy: order, maxCount: PAGE };
      const res = await training.queryPredictions(pid, q);
      setItems((list) => (more ? [...(list || []), ...res.results] : res.results));
      setToken(res.token && res.token.continuation ? res.token : null);
      setError(null);
    } catch (err) { setError(err); }
  };
  useEffect(() => { setItems(null); load(false); }, [pid, iteration, order, reload]);
  const detection = ctx.projectType === 'ObjectDetection';
  return html`<main class="page predictions" id="main">
    <div class="toolbar">
      <label for="pred-iteration">Iteration</label>
      <select id="pred-iteration" value=${iteration} onChange=${(e) => setIteration(e.currentTarget.value)}>
        <option value="">All iterations</option>
        ${ctx.iterations.filter((i) => i.status === 'Completed').map((i) => html`<option key=${i.id} value=${i.id}>${i.name}</option>`)}
      </select>
      <label for="pred-sort">Sort</label>
      <select id="pred-sort" value=${order} onChange=${(e) => setOrder(e.currentTarget.value)}>
        <option value="Suggested">Most useful first (suggested)</option>
        <option value="Newest">Newest first</option>
        <option value="Oldest">Oldest first</option>
      </select>
      <button type="button" class="secondary" onClick=${() => setReload((n) => n + 1)}>Refresh</button>
      <span class="spacer"></span>
      <span class="muted">Stored for 30 days. Open an image to tag it and add it to Training Images.</span>
    </div>
    <${ErrorText} error=${error} />
    ${items === null && !error && html`<p class="muted" aria-busy="true">Loading predictions…</p>`}
    ${items && !items.length && html`<${Notice}>No stored predictions${iteration ? ' for this iteration' : ''} yet:
      use Quick Test, or call the published endpoint (the image is stored unless you call .../nostore).</${Notice}>`}
    ${items && html`<ul class="grid">
      ${items.map((p, i) => {
        const shown = p.predictions.filter((x) => x.probability >= SHOWN_THRESHOLD);
        const top = shown.length ? shown : p.predictions.slice(0, 1);
        const summary = detection ? `${plural(shown.length, 'object')}: ${[...new Set(shown.map((x) => x.tagName))].join(', ')}`
          : top.map((x) => `${x.tagName} ${pct(x.probability)}`).join(', ');
        return html`<li key=${p.id} class="thumb prediction">
          <button type="button" class="thumb-button" aria-label=${`Prediction ${i + 1}: ${summary}`}
            onClick=${() => setOpen(p)}>
            <img src=${p.thumbnailUri} alt="" loading="lazy" />
            <span class="hover-tags" aria-hidden="true">
              ${(detection ? shown : p.predictions.slice(0, 3)).map((x, k) => html`<span key=${k}>${x.tagName} ${pct(x.probability)}</span>`)}
            </span>
          </button>
        </li>`;
      })}
    </ul>`}
    ${token && html`<button type="button" class="secondary" onClick=${() => load(true)}>Load more</button>`}
    ${open && html`<${PredictionDetail} prediction=${open} onClose=${(added) => { setOpen(null); if (added) setReload((n) => n + 1); }} />`}
  </main>`;
}

function PredictionDetail({ prediction, onClose }) {
  const ctx = useProject();
  const pid = ctx.project.id;
  const detection = ctx.projectType === 'ObjectDetection';
  const multiclass = ctx.project.settings.classificationType === 'Multiclass';
  const regular = ctx.tags.filter((t) => t.type !== 'Negative');
  const over = prediction.predictions.filter((x) => x.probability >= SHOWN_THRESHOLD);
  const [chosen, setChosen] = useState(() => new Set((multiclass ? prediction.predictions.slice(0, 1) : over)
    .filter((x) => x.probability >= SHOWN_THRESHOLD).map((x) => x.tagId)));
  const editor = useRef(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const initialRegions = detection ? over.filter((x) => x.boundingBox).map((x) => ({ tagId: x.tagId, tagName: x.tagName,
    ...x.boundingBox })) : [];
  const toggle = (id) => setChosen((s) => {
    const n = new Set(multiclass ? [] : s);
    if (s.has(id)) n.delete(id); else n.add(id);
    return n;
  });
  const save = async () => {
    setBusy(true);
    setError(null);
    try {
      const entry = { id: prediction.id };
      if (detection) {
        entry.regions = editor.current.getRegions().filter((r) => r.tagId).map((r) => ({ tagId: r.tagId, left: r.left,
          top: r.top, width: r.width, height: r.height }));
      } else entry.tagIds = [...chosen];
      if (!(entry.regions || entry.tagIds).length && !await ask('Add this image to training with no tag?',
        { confirmLabel: 'Add untagged', title: 'No tags' })) { setBusy(false); return; }
      const res = await training.createImagesFromPredictions(pid, [entry]);
      const r = res.images && res.images[0];
      if (r && r.status !== 'OK' && r.status !== 'OKDuplicate') throw new Error(`The image was not added (${r.status}).`);
      await training.deletePrediction(pid, [prediction.id]);  // "moves" it, as the portal does
      await ctx.reloadTags();
      toast(r && r.status === 'OKDuplicate' ? 'This image is already in Training Images' : 'Added to Training Images');
      onClose(true);
    } catch (err) { setError(err); setBusy(false); }
  };
  const footer = html`<span class="spacer"></span>
    <button type="button" class="secondary" onClick=${() => onClose(false)}>Cancel</button>
    <button type="button" class="primary" disabled=${busy} onClick=${save}>${icon('check')} Save and close</button>`;
  const createTag = async (name) => { const t = await training.createTag(pid, name); await ctx.reloadTags(); return t; };
  return html`<${Dialog} title="Prediction" onClose=${() => onClose(false)} size="full" footer=${footer}>
    <div class="detail">
      ${detection ? html`<div class="detail-main"><${RegionsPane} imageKey=${prediction.id}
          src=${prediction.resizedImageUri || prediction.originalImageUri} alt="Predicted image" regions=${initialRegions}
          tags=${regular} apiRef=${editor} createTag=${createTag} />
          <p class="muted small">Boxes at ${pct(SHOWN_THRESHOLD, 0)} or more are drawn: correct them (drag to draw,
            select to move, Delete removes), then Save and close.</p></div>`
        : html`<div class="detail-main"><img class="detail-img" src=${prediction.resizedImageUri || prediction.originalImageUri}
          alt="Predicted image" /></div>`}
      <aside class="detail-side" aria-label="Predicted tags">
        <h3>Predicted tags</h3>
        <table class="table"><thead><tr><th scope="col">Tag</th><th scope="col">Probability</th></tr></thead>
          <tbody>${prediction.predictions.slice(0, detection ? 20 : 50).map((x, k) => html`<tr key=${k}>
            <td>${x.tagName}</td><td>${pct(x.probability)}</td></tr>`)}</tbody></table>
        ${!detection && html`<h3>Tags to add it with</h3>
          <div class="tag-buttons" role="group" aria-label="Tags">
            ${regular.map((t) => html`<button type="button" key=${t.id} class="toggle" aria-pressed=${chosen.has(t.id)}
              onClick=${() => toggle(t.id)}>${t.name}</button>`)}
          </div>`}
        <${ErrorText} error=${error} />
      </aside>
    </div>
  </${Dialog}>`;
}
