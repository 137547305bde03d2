// Training Images: "Add images" (upload with My Tags), Tagged / Untagged filters with counts, the tag list with
// checkbox filters, the iteration selector that frames mispredicted images in red, paged thumbnails, bulk tagging,
// and the smart labeler ("Get suggested tags").
import { portal, training } from './api.js';
import { useProject } from './context.js';
import { ImageDetail } from './image-detail.js';
import { html, latestCompleted, navigate, pct, plural, useEffect, useMemo, useRef, useState } from './lib.js';
import { Chip, Dialog, ErrorText, Notice, Progress, ask, icon, toast } from './ui.js';
import { jobFor, startUpload, useUploads } from './uploads.js';

export const PAGE_SIZE = 60;

function setQuery(ctx, patch) {
  const q = { ...ctx.query, ...patch };
  navigate(['projects', ctx.project.id, 'images'], q, { replace: true });
}

export function TrainingImages() {
  const ctx = useProject();
  const pid = ctx.project.id;
  const q = ctx.query;
  const status = q.status || '';
  const tagFilter = useMemo(() => (q.tags ? q.tags.split(',').filter(Boolean) : []), [q.tags]);
  const page = Math.max(1, Number(q.page || 1));
  const [counts, setCounts] = useState({ tagged: null, untagged: null, filtered: null });
  const [images, setImages] = useState(null);
  const [error, setError] = useState(null);
  const [reload, setReload] = useState(0);
  const [detail, setDetail] = useState(null);
  const [uploading, setUploading] = useState(false);
  const [selecting, setSelecting] = useState(false);
  const [selected, setSelected] = useState(new Set());
  const [bulkTag, setBulkTag] = useState(false);
  const [smart, setSmart] = useState(false);
  const [suggestions, setSuggestions] = useState(null);
  const [mistakes, setMistakes] = useState(null);
  const completed = ctx.iterations.filter((i) => i.status === 'Completed');
  const uploads = useUploads();
  const running = uploads.some((j) => j.projectId === pid && j.status === 'uploading');
  const wasRunning = useRef(running);
  useEffect(() => {  // an upload finished (even one started before the learner left the page): refresh
    if (wasRunning.current && !running) { setReload((n) => n + 1); ctx.reloadTags(); }
    wasRunning.current = running;
  }, [running]);

  useEffect(() => { ctx.reloadTags().catch(() => {}); }, [pid]);  // images may have come through the SDK meanwhile
  const filterArgs = () => {
    if (status === 'untagged') return { taggingStatus: 'Untagged' };
    return { taggingStatus: status === 'tagged' ? 'Tagged' : undefined, tagIds: tagFilter.length ? tagFilter : undefined };
  };
  const fetchPage = (n) => training.getImages(pid, { ...filterArgs(), take: PAGE_SIZE, skip: (n - 1) * PAGE_SIZE });

  useEffect(() => {
    let live = true;
    setError(null);
    const args = filterArgs();
    const filtered = !args.taggingStatus && !args.tagIds;
    Promise.all([training.getImageCount(pid, { taggingStatus: 'Tagged' }),
      training.getImageCount(pid, { taggingStatus: 'Untagged' }),
      filtered ? Promise.resolve(null) : training.getImageCount(pid, args), fetchPage(page)])
      .then(([tagged, untagged, count, list]) => {
        if (!live) return;
        setCounts({ tagged, untagged, filtered: count === null ? tagged + untagged : count });
        setImages(list);
      }, (err) => live && setError(err));
    return () => { live = false; };
  }, [pid, status, q.tags, page, reload]);

  useEffect(() => {
    if (!q.iteration) { setMistakes(null); return; }
    portal.mistakes(pid, q.iteration, 0.5, 0.5).then((m) => setMistakes({
      iteration: q.iteration, byId: new Map(m.images.map((x) => [x.imageId, x])) }), (err) => setError(err));
  }, [pid, q.iteration, reload]);

  const pages = counts.filtered === null ? 1 : Math.max(1, Math.ceil(counts.filtered / PAGE_SIZE));
  const refresh = () => { setReload((n) => n + 1); ctx.reloadTags(); };
  const toggleTag = (id) => {
    const next = tagFilter.includes(id) ? tagFilter.filter((t) => t !== id) : [...tagFilter, id];
    setQuery(ctx, { tags: next.join(','), page: undefined, status: status === 'untagged' && next.length ? 'tagged' : status });
  };
  const latest = latestCompleted(ctx.iterations);
  const iterationName = mistakes && (ctx.iterations.find((i) => i.id === mistakes.iteration) || {}).name;

  if (suggestions) {
    return html`<${SuggestionsView} result=${suggestions} onClose=${() => { setSuggestions(null); refresh(); }} />`;
  }
  return html`<main class="images-page" id="main">
    <aside class="filters" aria-label="Filters">
      <h2>Tags</h2>
      <div class="status-filter" role="group" aria-label="Tagging status">
        <button type="button" class="toggle" aria-pressed=${status === 'tagged'} aria-label="Tagged"
          aria-describedby="count-tagged" onClick=${() => setQuery(ctx, { status: status === 'tagged' ? '' : 'tagged', page: undefined })}>
          Tagged <span id="count-tagged" class="count">${counts.tagged ?? '…'}</span></button>
        <button type="button" class="toggle" aria-pressed=${status === 'untagged'} aria-label="Untagged"
          aria-describedby="count-untagged" onClick=${() => setQuery(ctx, { status: status === 'untagged' ? '' : 'untagged', tags: undefined, page: undefined })}>
          Untagged <span id="count-untagged" class="count">${counts.untagged ?? '…'}</span>
          ${counts.untagged > 0 && html`<span class="red-dot" title="There are untagged images"></span>`}</button>
      </div>
      <${TagList} tags=${ctx.tags} checked=${tagFilter} onToggle=${toggleTag} onChanged=${refresh} />
      <label for="iteration-select" class="field-label">Iteration</label>
      <select id="iteration-select" value=${q.iteration || ''}
        onChange=${(e) => setQuery(ctx, { iteration: e.currentTarget.value || undefined })}>
        <option value="">(none)</option>
        ${completed.map((it) => html`<option value=${it.id} key=${it.id}>${it.name}</option>`)}
      </select>
      ${mistakes && html`<p class="legend"><span class="red-frame-sample" aria-hidden="true"></span>
        ${`Red frame: ${iterationName} mispredicted the image (probability threshold 50%; ${plural(mistakes.byId.size, 'image')}).`}</p>`}
      ${status === 'untagged' && html`<button type="button" class="secondary smart" disabled=${!latest}
        title=${latest ? `Suggestions from ${latest.name}` : 'Train an iteration first'}
        onClick=${() => setSmart(true)}>${icon('sparkle')} Get suggested tags</button>`}
    </aside>
    <section class="images-main" aria-label="Images">
      <div class="toolbar">
        <button type="button" class="primary" onClick=${() => setUploading(true)}>${icon('plus')} Add images</button>
        <button type="button" class="secondary" aria-pressed=${selecting}
          onClick=${() => { setSelecting(!selecting); setSelected(new Set()); }}>Select images</button>
        ${selecting && html`
          <button type="button" class="secondary" onClick=${() => setSelected(new Set((images || []).map((i) => i.id)))}>
            Select all on page</button>
          <button type="button" class="secondary" disabled=${!selected.size} onClick=${() => setBulkTag(true)}>
            ${icon('tag')} Tag images</button>
          <button type="button" class="danger" disabled=${!selected.size} onClick=${async () => {
            if (!await ask(`Delete ${plural(selected.size, 'image')}? This cannot be undone.`)) return;
            try { await training.deleteImages(pid, [...selected]); toast(`${plural(selected.size, 'image')} deleted`); }
            catch (err) { setError(err); }
            setSelected(new Set()); refresh(); }}>${icon('trash')} Delete</button>
          <span class="muted">${selected.size} selected</span>`}
        <span class="spacer"></span>
        <span class="muted" role="status">${counts.filtered === null ? '' : plural(counts.filtered, 'image')}</span>
      </div>
      ${running && html`<${UploadProgress} job=${jobFor(pid)} />`}
      <${ErrorText} error=${error} />
      ${images === null ? html`<p class="muted" aria-busy="true">Loading images…</p>` : html`
        ${!images.length && html`<div class="empty">
          ${status === 'untagged' ? html`<p>No untagged images.</p>` : html`<p>No images yet.</p>
          <p>Select <strong>Add images</strong> to upload photos from this computer.</p>`}</div>`}
        <ul class="grid">
          ${images.map((im, i) => html`<${Thumb} key=${im.id} image=${im} n=${(page - 1) * PAGE_SIZE + i + 1}
            mistake=${mistakes && mistakes.byId.get(im.id)} selecting=${selecting} selected=${selected.has(im.id)}
            onSelect=${(on) => setSelected((s) => { const n = new Set(s); if (on) n.add(im.id); else n.delete(im.id); return n; })}
            onOpen=${() => setDetail({ list: images, index: i, page })} />`)}
        </ul>
        <${Pager} page=${page} pages=${pages} onPage=${(n) => setQuery(ctx, { page: n > 1 ? n : undefined })} />`}
    </section>
    ${uploading && html`<${UploadDialog} onClose=${() => setUploading(false)} />`}
    ${detail && html`<${ImageDetail} list=${detail.list} index=${detail.index}
      onLoadMore=${page >= pages ? null : async () => {
        const nextPage = detail.page + Math.ceil(detail.list.length / PAGE_SIZE);
        if (nextPage > pages) return null;
        const more = await fetchPage(nextPage);
        return more.length ? [...detail.list, ...more] : null;
      }}
      onClose=${() => { setDetail(null); refresh(); }} />`}
    ${bulkTag && html`<${BulkTagDialog} ids=${[...selected]} onClose=${() => setBulkTag(false)}
      onDone=${() => { setBulkTag(false); setSelected(new Set()); refresh(); }} />`}
    ${smart && html`<${SmartLabelerDialog} iteration=${latest} onClose=${() => setSmart(false)}
      onResult=${(r) => { setSmart(false); setSuggestions(r); }} />`}
  </main>`;
}

function Thumb({ image, n, mistake, selecting, selected, onSelect, onOpen }) {
  const tags = image.tags ? image.tags.map((t) => t.tagName) : [];
  const regions = image.regions || [];
  const names = regions.length ? [...new Set(regions.map((r) => r.tagName))] : tags;
  const label = `Image ${n}${names.length ? `: ${names.join(', ')}` : ', untagged'}`
    + `${regions.length ? ` (${plural(regions.length, 'region')})` : ''}${mistake ? ', mispredicted' : ''}`;
  return html`<li class=${`thumb${mistake ? ' mispredicted' : ''}${selected ? ' selected' : ''}`}>
    <button type="button" class="thumb-button" aria-label=${label}
      title=${mistake ? mispredictedText(mistake) : names.join(', ')}
      onClick=${() => (selecting ? onSelect(!selected) : onOpen())}>
      <img src=${image.thumbnailUri} alt="" loading="lazy" decoding="async" />
      ${names.length > 0 && html`<span class="thumb-tags">${names.join(', ')}</span>`}
      ${mistake && html`<span class="miss-badge" aria-hidden="true">mispredicted</span>`}
    </button>
    ${selecting && html`<input type="checkbox" class="thumb-check" aria-label=${`Select image ${n}`}
      checked=${selected} onChange=${(e) => onSelect(e.currentTarget.checked)} />`}
  </li>`;
}

function mispredictedText(m) {
  const parts = [];
  if (m.falsePositives.length) parts.push(`predicted ${m.falsePositives.join(', ')} wrongly`);
  if (m.falseNegatives.length) parts.push(`missed ${m.falseNegatives.join(', ')}`);
  return `Mispredicted: ${parts.join('; ')}`;
}

function Pager({ page, pages, onPage }) {
  if (pages <= 1) return null;
  return html`<nav class="pager" aria-label="Pages">
    <button type="button" class="secondary" disabled=${page <= 1} onClick=${() => onPage(page - 1)}>Previous page</button>
    <span>Page ${page} of ${pages}</span>
    <button type="button" class="secondary" disabled=${page >= pages} onClick=${() => onPage(page + 1)}>Next page</button>
  </nav>`;
}

function TagList({ tags, checked, onToggle, onChanged }) {
  const ctx = useProject();
  const [name, setName] = useState('');
  const [error, setError] = useState(null);
  const add = async (e) => {
    e.preventDefault();
    if (!name.trim()) return;
    try {
      await training.createTag(ctx.project.id, name.trim(), name.trim().toLowerCase() === 'negative' ? 'Negative' : undefined);
      setName('');
      setError(null);
      onChanged();
    } catch (err) { setError(err); }
  };
  const remove = async (t) => {
    if (!await ask(`Delete the tag "${t.name}"? It is removed from ${plural(t.imageCount, 'image')}.`)) return;
    try { await training.deleteTag(ctx.project.id, t.id); onChanged(); } catch (err) { setError(err); }
  };
  return html`<div class="tag-list">
    <ul>
      ${tags.map((t) => html`<li key=${t.id}>
        <label class="tag-check">
          <input type="checkbox" checked=${checked.includes(t.id)} onChange=${() => onToggle(t.id)} />
          <span class="tag-name">${t.name}</span>${t.type === 'Negative' && html` <span class="muted small">(Negative)</span>`}
        </label>
        <span class="count" aria-label=${`${t.imageCount} images`}>${t.imageCount}</span>
        <button type="button" class="icon-button small" aria-label=${`Delete tag ${t.name}`} onClick=${() => remove(t)}>
          ${icon('trash')}</button>
      </li>`)}
    </ul>
    <form class="add-tag" onSubmit=${add}>
      <input aria-label="New tag name" placeholder="Add a tag" value=${name} onInput=${(e) => setName(e.currentTarget.value)} />
      <button type="submit" class="icon-button" aria-label="Add tag">${icon('plus')}</button>
    </form>
    <${ErrorText} error=${error} />
  </div>`;
}

function UploadProgress({ job }) {
  if (!job) return null;
  return html`<div class="upload-progress">
    <${Progress} label="Upload progress" value=${job.bytesDone} max=${job.bytesTotal || 1}
      text=${`Uploading ${job.done} of ${job.total} images…`} />
  </div>`;
}

/** "Add images": Browse local files, My Tags, "Upload N files", a progress bar, the per-file outcome, "Done". */
function UploadDialog({ onClose }) {
  const ctx = useProject();
  const pid = ctx.project.id;
  const detection = ctx.projectType === 'ObjectDetection';
  const [files, setFiles] = useState([]);
  const [myTags, setMyTags] = useState([]);
  const [typed, setTyped] = useState('');
  const [previews, setPreviews] = useState([]);
  const [jobId, setJobId] = useState(null);
  const [error, setError] = useState(null);
  const input = useRef(null);
  const uploads = useUploads();
  const job = jobId && uploads.find((j) => j.id === jobId);
  const multiclass = ctx.project.settings.classificationType === 'Multiclass';
  useEffect(() => {
    const urls = files.slice(0, 12).map((f) => URL.createObjectURL(f));
    setPreviews(urls);
    return () => urls.forEach((u) => URL.revokeObjectURL(u));
  }, [files]);
  const pick = (list) => setFiles([...list].filter((f) => !f.type || f.type.startsWith('image/')));
  const addTyped = () => {
    const name = typed.trim();
    if (!name) return myTags;
    const next = multiclass ? [name] : [...new Set([...myTags, name])];
    setMyTags(next);
    setTyped('');
    return next;
  };
  const upload = () => {
    const names = addTyped();
    if (multiclass && names.length > 1) { setError({ message: 'A multiclass project takes one tag per image.' }); return; }
    setError(null);
    const j = startUpload(pid, files, detection ? [] : names, (done) => {
      if (done.status === 'done') toast(`${plural(done.ok, 'image')} uploaded`);
      else toast(`Upload stopped after ${plural(done.ok, 'image')}: ${done.error ? done.error.message : 'unknown error'}`, 'error');
    });
    setJobId(j.id);
  };
  const known = ctx.tags.map((t) => t.name);
  return html`<${Dialog} title="Image upload" onClose=${onClose} size="wide">
    ${!job && html`
      <div class="drop" onDragOver=${(e) => e.preventDefault()}
        onDrop=${(e) => { e.preventDefault(); pick(e.dataTransfer.files); }}>
        <input ref=${input} type="file" multiple accept="image/*" class="visually-hidden" tabindex="-1"
          aria-hidden="true" onChange=${(e) => pick(e.currentTarget.files)} />
        <button type="button" class="primary" onClick=${() => input.current.click()}>Browse local files</button>
        <p class="muted">or drop image files here. Images up to 6 MB each (JPEG, PNG, BMP, GIF, WebP).</p>
      </div>
      ${files.length > 0 && html`
        <p><strong>${plural(files.length, 'image')}</strong> selected</p>
        <ul class="preview-grid">${previews.map((u, i) => html`<li key=${u}><img src=${u} alt="" />
          <span class="file-name">${files[i].name}</span></li>`)}</ul>
        ${files.length > previews.length && html`<p class="muted small">and ${files.length - previews.length} more:${' '}
          ${files.slice(previews.length, previews.length + 20).map((f) => f.name).join(', ')}${files.length > previews.length + 20 ? ', …' : ''}</p>`}
        ${!detection && html`
          <label for="my-tags" class="field-label">My Tags</label>
          <div class="chips-input">
            ${myTags.map((t) => html`<${Chip} key=${t} name=${t} onRemove=${() => setMyTags(myTags.filter((x) => x !== t))} />`)}
            <input id="my-tags" list="known-tags" value=${typed} placeholder=${myTags.length ? '' : 'Add a tag and press Enter'}
              onInput=${(e) => setTyped(e.currentTarget.value)}
              onKeyDown=${(e) => { if (e.key === 'Enter') { e.preventDefault(); addTyped(); } }} />
            <datalist id="known-tags">${known.map((n) => html`<option value=${n} />`)}</datalist>
          </div>
          <p class="muted small">${multiclass ? 'Multiclass: one tag for the whole batch.'
            : 'The tags apply to every image of this upload.'}</p>`}
        <${ErrorText} error=${error} />
        <div class="buttons">
          <button type="button" class="primary" onClick=${upload}>Upload ${plural(files.length, 'file')}</button>
        </div>`}`}
    ${job && html`
      <${Progress} label="Upload progress" value=${job.bytesDone} max=${job.bytesTotal || 1}
        text=${job.status === 'uploading' ? `Uploading ${job.done} of ${job.total} images…`
          : `${job.done} of ${job.total} images processed`} />
      ${job.status === 'uploading' && html`<p class="muted small">You can close this window: the upload goes on and
        the top bar shows its progress.</p>`}
      ${job.status !== 'uploading' && html`<div role="status">
        <p>${plural(job.ok, 'image')} uploaded successfully${job.tagNames.length ? ` with ${job.tagNames.join(', ')}` : ''}.</p>
        ${job.duplicates > 0 && html`<p>${plural(job.duplicates, 'image')} already in the project (duplicates kept as they were).</p>`}
        ${job.failed.length > 0 && html`<div class="alert error" role="alert"><p>${plural(job.failed.length, 'image')} failed:</p>
          <ul>${job.failed.map((f, i) => html`<li key=${i}><span class="file-name">${f.name}</span>: ${f.status}</li>`)}</ul></div>`}
      </div>`}
      <${ErrorText} error=${job.error} />
      <div class="buttons"><button type="button" class="primary" onClick=${onClose}>Done</button></div>`}
  </${Dialog}>`;
}

function BulkTagDialog({ ids, onClose, onDone }) {
  const ctx = useProject();
  const [tagId, setTagId] = useState('');
  const [error, setError] = useState(null);
  const apply = async () => {
    try {
      for (let i = 0; i < ids.length; i += 64) {
        await training.createImageTags(ctx.project.id, ids.slice(i, i + 64).map((id) => [id, tagId]));
      }
      toast(`${plural(ids.length, 'image')} tagged`);
      onDone();
    } catch (err) { setError(err); }
  };
  return html`<${Dialog} title="Tag images" onClose=${onClose}>
    <label for="bulk-tag" class="field-label">Tag for ${plural(ids.length, 'selected image')}</label>
    <select id="bulk-tag" value=${tagId} onChange=${(e) => setTagId(e.currentTarget.value)}>
      <option value="">Choose a tag</option>
      ${ctx.tags.map((t) => html`<option value=${t.id} key=${t.id}>${t.name}</option>`)}
    </select>
    <${ErrorText} error=${error} />
    <div class="buttons"><button type="button" class="primary" disabled=${!tagId} onClick=${apply}>Save</button></div>
  </${Dialog}>`;
}

// ---- smart labeler -------------------------------------------------------------------------------------------
const SUGGESTION_THRESHOLD = 0.5;

function SmartLabelerDialog({ iteration, onClose, onResult }) {
  const ctx = useProject();
  const regular = ctx.tags.filter((t) => t.type !== 'Negative');
  const [tagIds, setTagIds] = useState(regular.map((t) => t.id));
  const [count, setCount] = useState(50);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const token = { tagIds, threshold: 0, maxCount: count, sortBy: 'UncertaintyDescending' };
      const r = await training.querySuggestedImages(ctx.project.id, iteration.id, token);
      onResult({ ...r, iteration, request: token });
    } catch (err) { setError(err); setBusy(false); }
  };
  return html`<${Dialog} title="Get suggested tags" onClose=${onClose}>
    <form class="form" onSubmit=${run}>
      <p>${iteration.name} suggests tags for untagged images, most uncertain first: confirm its suggestions, or
        correct them, and train again. Suggestions cost what predictions cost on Azure, and are kept for 30 days.</p>
      <fieldset class="choices"><legend>Tags to get suggestions for</legend>
        ${regular.map((t) => html`<label class="choice" key=${t.id}><input type="checkbox" checked=${tagIds.includes(t.id)}
          onChange=${(ev) => setTagIds(ev.currentTarget.checked ? [...tagIds, t.id] : tagIds.filter((x) => x !== t.id))} />
          <span>${t.name}</span></label>`)}
      </fieldset>
      <label for="smart-count" class="field-label">Number of images</label>
      <input id="smart-count" type="number" min="1" max="256" value=${count}
        onInput=${(e) => setCount(Math.max(1, Math.min(256, Number(e.currentTarget.value) || 1)))} />
      <${ErrorText} error=${error} />
      ${busy && html`<${Progress} label="Getting suggestions" text="Predicting the untagged images…" />`}
      <div class="buttons">
        <button type="button" class="secondary" onClick=${onClose}>Cancel</button>
        <button type="submit" class="primary" disabled=${busy || !tagIds.length}>Get suggested tags</button>
      </div>
    </form>
  </${Dialog}>`;
}

/** What the smart labeler suggests for one image: the top tag (multiclass), tags over 50 % (multilabel), boxes. */
export function suggestedTags(result, multiclass) {
  const preds = [...(result.predictions || [])].sort((a, b) => b.probability - a.probability);
  if (!preds.length) return [];
  if (multiclass) return [preds[0]];
  const over = preds.filter((p) => p.probability >= SUGGESTION_THRESHOLD);
  return over.length ? over : [preds[0]];
}

function SuggestionsView({ result, onClose }) {
  const ctx = useProject();
  const pid = ctx.project.id;
  const detection = ctx.projectType === 'ObjectDetection';
  const multiclass = ctx.project.settings.classificationType === 'Multiclass';
  const [data, setData] = useState(result);
  const [sort, setSort] = useState(result.request.sortBy);
  const [onlyTag, setOnlyTag] = useState('');
  const [excluded, setExcluded] = useState(new Set());
  const [done, setDone] = useState(new Set());
  const [detail, setDetail] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const resort = async (sortBy) => {
    setSort(sortBy);
    try { setData({ ...data, ...(await training.querySuggestedImages(pid, data.iteration.id, { ...data.request, sortBy })) }); }
    catch (err) { setError(err); }
  };
  const items = data.results.filter((r) => !done.has(r.id)).filter((r) => !onlyTag
    || (detection ? r.predictions.some((p) => p.tagId === onlyTag && p.probability >= SUGGESTION_THRESHOLD)
      : suggestedTags(r, multiclass).some((p) => p.tagId === onlyTag)));
  const confirmAll = async () => {
    const chosen = items.filter((r) => !excluded.has(r.id));
    const pairs = chosen.flatMap((r) => suggestedTags(r, multiclass).map((p) => [r.id, p.tagId]));
    setBusy(true);
    try {
      for (let i = 0; i < pairs.length; i += 64) await training.createImageTags(pid, pairs.slice(i, i + 64));
      setDone(new Set([...done, ...chosen.map((r) => r.id)]));
      toast(`Suggested tags confirmed on ${plural(chosen.length, 'image')}`);
      ctx.reloadTags();
    } catch (err) { setError(err); }
    setBusy(false);
  };
  const images = items.map((r) => ({ id: r.id, thumbnailUri: r.thumbnailUri, resizedImageUri: r.resizedImageUri,
    originalImageUri: r.originalImageUri, width: r.width, height: r.height, tags: null, regions: null,
    suggestions: r.predictions.filter((p) => p.boundingBox && p.probability >= SUGGESTION_THRESHOLD) }));
  return html`<main class="images-page suggestions" id="main">
    <section class="images-main wide" aria-label="Suggested tags">
      <div class="toolbar">
        <h2>Suggested tags <span class="muted small">from ${data.iteration.name}</span></h2>
        <label for="sort-uncertainty">Sort by uncertainty</label>
        <select id="sort-uncertainty" value=${sort} onChange=${(e) => resort(e.currentTarget.value)}>
          <option value="UncertaintyDescending">High to low</option>
          <option value="UncertaintyAscending">Low to high</option>
        </select>
        <label for="suggested-tag">Suggested tag</label>
        <select id="suggested-tag" value=${onlyTag} onChange=${(e) => setOnlyTag(e.currentTarget.value)}>
          <option value="">All</option>
          ${ctx.tags.map((t) => html`<option value=${t.id} key=${t.id}>${t.name}</option>`)}
        </select>
        <span class="spacer"></span>
        ${!detection && html`<button type="button" class="primary" disabled=${busy || !items.length} onClick=${confirmAll}>
          ${icon('check')} Confirm suggested tags</button>`}
        <button type="button" class="secondary" onClick=${onClose}>Back to Training Images</button>
      </div>
      <${ErrorText} error=${error} />
      ${detection && html`<p class="muted">Open each image, check its suggested regions (dashed), then Confirm.</p>`}
      ${!items.length && html`<${Notice}>No more suggestions here. Train again to get new ones.</${Notice}>`}
      <ul class="grid">
        ${items.map((r, i) => {
          const tags = suggestedTags(r, multiclass);
          const boxes = r.predictions.filter((p) => p.boundingBox && p.probability >= SUGGESTION_THRESHOLD);
          const label = detection ? `Suggestion ${i + 1}: ${plural(boxes.length, 'region')}`
            : `Suggestion ${i + 1}: ${tags.map((p) => `${p.tagName} ${pct(p.probability)}`).join(', ')}`;
          return html`<li key=${r.id} class=${`thumb${excluded.has(r.id) ? ' excluded' : ''}`}>
            <button type="button" class="thumb-button" aria-label=${label}
              onClick=${() => (detection ? setDetail(i) : setExcluded((s) => { const n = new Set(s); if (n.has(r.id)) n.delete(r.id); else n.add(r.id); return n; }))}>
              <img src=${r.thumbnailUri} alt="" loading="lazy" />
              ${detection && html`<svg class="thumb-boxes" viewBox="0 0 1 1" preserveAspectRatio="none" aria-hidden="true">
                ${boxes.map((b, k) => html`<rect key=${k} x=${b.boundingBox.left} y=${b.boundingBox.top}
                  width=${b.boundingBox.width} height=${b.boundingBox.height} />`)}</svg>`}
              <span class="thumb-tags">${detection ? boxes.map((b) => b.tagName).join(', ')
                : tags.map((p) => `${p.tagName} ${pct(p.probability, 0)}`).join(', ')}</span>
            </button>
            ${!detection && html`<span class="muted small uncertainty">uncertainty ${r.predictionUncertainty.toFixed(2)}
              ${excluded.has(r.id) ? ' · left out' : ''}</span>`}
          </li>`;
        })}
      </ul>
      ${!detection && html`<p class="muted small">Click an image to leave it out of the confirmation.</p>`}
    </section>
    ${detail !== null && html`<${ImageDetail} list=${images} index=${detail} suggestionsMode="always"
      onConfirmed=${(id) => setDone((s) => new Set([...s, id]))}
      onClose=${() => { setDetail(null); ctx.reloadTags(); }} />`}
  </main>`;
}
