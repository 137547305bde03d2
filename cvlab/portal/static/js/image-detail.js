// Image Detail: tag chips (classification, with the Negative tag) or the region editor (detection), "<" and ">"
// to move through the images, Delete. Every change is saved at once through the Training API.
import { training } from './api.js';
import { useProject } from './context.js';
import { html, latestCompleted, plural, useEffect, useLayoutEffect, useRef, useState, useWindowKeys } from './lib.js';
import { createRegionEditor } from './regions.js';
import { Chip, Dialog, ErrorText, ask, icon, toast } from './ui.js';

const PROPOSAL_MIN_CONFIDENCE = 0.3;  // automatically detected regions weaker than this are not offered
const PROPOSAL_MAX = 20;

const sig = (r) => [r.tagId, r.left, r.top, r.width, r.height].map((v) => (typeof v === 'number' ? v.toFixed(5) : v)).join('|');

/** Make the image's saved regions equal the editor's tagged regions: create the new, delete the gone. */
export async function syncRegions(projectId, imageId, editor, saved) {
  const wanted = editor.getRegions().filter((r) => r.tagId);
  const keep = new Set();
  const create = [];
  for (const r of wanted) {
    if (r.id && saved.has(r.id) && saved.get(r.id) === sig(r)) keep.add(r.id);
    else create.push(r);
  }
  const remove = [...saved.keys()].filter((id) => !keep.has(id));
  if (create.length) {
    const res = await training.createImageRegions(projectId, create.map((r) => ({ imageId, tagId: r.tagId,
      left: r.left, top: r.top, width: r.width, height: r.height })));
    const pool = [...create];
    for (const c of res.created || []) {
      const i = pool.findIndex((r) => r.tagId === c.tagId && Math.abs(r.left - c.left) < 1e-4 && Math.abs(r.top - c.top) < 1e-4
        && Math.abs(r.width - c.width) < 1e-4 && Math.abs(r.height - c.height) < 1e-4);
      if (i < 0) continue;
      saved.set(c.regionId, sig(pool[i]));
      editor.setRegionId(pool[i].key, c.regionId);
      pool.splice(i, 1);
    }
    if ((res.exceeded || []).length) throw new Error('This image has the most regions Azure allows (300): delete some.');
  }
  if (remove.length) {
    for (let i = 0; i < remove.length; i += 64) await training.deleteImageRegions(projectId, remove.slice(i, i + 64));
    remove.forEach((id) => saved.delete(id));
  }
}

/** The region editor (regions.js) inside a Preact component; `apiRef.current` is the editor. */
export function RegionsPane({ src, alt, regions, tags, suggestions, suggestionsMode = 'hover', onChange, onSelect,
  apiRef, createTag, imageKey }) {
  const host = useRef(null);
  const editor = useRef(null);
  const handlers = useRef({});
  handlers.current = { onChange, onSelect };
  // Layout effects: the editor exists and has focus before the browser paints it, so a key pressed at once lands.
  useLayoutEffect(() => {
    editor.current = createRegionEditor(host.current, { tags, createTag,
      onChange: (list, info) => handlers.current.onChange && handlers.current.onChange(list, info),
      onSelect: (r) => handlers.current.onSelect && handlers.current.onSelect(r) });
    if (apiRef) apiRef.current = editor.current;
    return () => editor.current.destroy();
  }, []);
  useLayoutEffect(() => {
    const e = editor.current;
    e.setImage(src, alt);
    e.setRegions(regions || []);
    e.setSuggestions([], suggestionsMode);
    e.focus();
  }, [imageKey]);
  useEffect(() => { editor.current.setTags(tags); }, [tags]);
  useEffect(() => { editor.current.setSuggestions(suggestions || [], suggestionsMode); }, [suggestions, suggestionsMode]);
  return html`<div class="regions-host" ref=${host}></div>`;
}

const regionsOf = (image) => (image.regions || []).map((r) => ({ id: r.regionId, tagId: r.tagId, tagName: r.tagName,
  left: r.left, top: r.top, width: r.width, height: r.height }));

export function ImageDetail({ list: initial, index: start, onClose, onLoadMore, suggestionsMode = 'hover', onConfirmed }) {
  const ctx = useProject();
  const pid = ctx.project.id;
  const detection = ctx.projectType === 'ObjectDetection';
  const [list, setList] = useState(initial);
  const [index, setIndex] = useState(start);
  const [image, setImage] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const pending = useRef(Promise.resolve());
  const flush = useRef(null);  // the detection editor's "save what is not saved yet"
  const current = list[index];

  const queue = (job) => {
    pending.current = pending.current.then(job).catch((err) => setError(err));
    return pending.current;
  };
  const refresh = async () => {
    const [fresh] = await training.getImagesByIds(pid, [current.id]);
    if (fresh) setImage({ ...fresh, suggestions: current.suggestions });
    return fresh;
  };
  useEffect(() => {
    setImage(null);
    setError(null);
    refresh().then((fresh) => { if (!fresh) setImage(current); }, (err) => { setError(err); setImage(current); });
  }, [current.id]);
  const settle = async () => {
    if (flush.current) await flush.current();
    await pending.current;
  };
  const go = async (delta) => {
    await settle();
    const next = index + delta;
    if (next >= 0 && next < list.length) { setIndex(next); return; }
    if (delta > 0 && onLoadMore) {
      const more = await onLoadMore();
      if (more && more.length > list.length) { setList(more); setIndex(next); }
    }
  };
  const close = async () => { await settle(); onClose(); };
  useWindowKeys((e) => {
    if (e.defaultPrevented || ['INPUT', 'TEXTAREA', 'SELECT'].includes(e.target.tagName) || e.ctrlKey || e.metaKey) return;
    if (document.querySelectorAll('dialog[open]').length > 1) return;  // a question on top of the detail
    if (e.key === 'ArrowLeft' || e.key === '<') { e.preventDefault(); go(-1); }
    if (e.key === 'ArrowRight' || e.key === '>') { e.preventDefault(); go(1); }
  });
  const remove = async () => {
    if (!await ask('Delete this image from the project? This cannot be undone.')) return;
    setBusy(true);
    try {
      await settle();
      await training.deleteImages(pid, [current.id]);
      toast('Image deleted');
      const rest = list.filter((x) => x.id !== current.id);
      if (!rest.length) { onClose(); return; }
      setList(rest);
      setIndex(Math.min(index, rest.length - 1));
    } catch (err) { setError(err); }
    setBusy(false);
  };
  const footer = html`<span class="muted">Image ${index + 1} of ${list.length}${onLoadMore ? '+' : ''}</span>
    <span class="spacer"></span>
    <button type="button" class="danger" disabled=${busy} onClick=${remove}>${icon('trash')} Delete</button>
    <button type="button" class="primary" onClick=${close}>Done</button>`;
  let body = html`<div class="detail-main"><p class="muted" aria-busy="true">Loading the image…</p></div>`;
  if (image && detection) {
    body = html`<${DetectionEditor} key=${image.id} image=${image} queue=${queue} flushRef=${flush}
      suggestionsMode=${suggestionsMode} onConfirmed=${onConfirmed} />`;
  } else if (image) {
    body = html`<${ClassificationTagger} image=${image} queue=${queue} refresh=${refresh} setError=${setError} />`;
  }
  return html`<${Dialog} title="Image Detail" onClose=${close} size="full" footer=${footer}>
    <div class="detail">
      <button type="button" class="nav prev" aria-label="Previous image" title="Previous image (Left arrow)"
        disabled=${index === 0} onClick=${() => go(-1)}><span aria-hidden="true">${'<'}</span></button>
      ${body}
      <button type="button" class="nav next" aria-label="Next image" title="Next image (Right arrow)"
        disabled=${index >= list.length - 1 && !onLoadMore} onClick=${() => go(1)}>
        <span aria-hidden="true">${'>'}</span></button>
    </div>
    <${ErrorText} error=${error} />
  </${Dialog}>`;
}

function Metadata({ image }) {
  const entries = Object.entries(image.metadata || {});
  if (!entries.length) return null;
  return html`<section class="metadata" aria-label="Metadata"><h3>Metadata</h3>
    <dl>${entries.map(([k, v]) => html`<div key=${k}><dt>${k}</dt><dd>${v}</dd></div>`)}</dl></section>`;
}

function DetectionEditor({ image, queue, flushRef, suggestionsMode, onConfirmed }) {
  const ctx = useProject();
  const pid = ctx.project.id;
  const editor = useRef(null);
  const saved = useRef(new Map());
  const initial = useRef(regionsOf(image)).current;
  const [regions, setRegions] = useState(initial);
  const [selected, setSelected] = useState(null);
  const [suggestions, setSuggestions] = useState([]);
  const [note, setNote] = useState('');
  const [, setHistory] = useState(0);
  const tags = ctx.tags.filter((t) => t.type !== 'Negative');
  const timer = useRef(null);
  const dirty = useRef(false);
  const save = () => {
    clearTimeout(timer.current);
    if (!dirty.current) return Promise.resolve();
    dirty.current = false;
    return queue(() => syncRegions(pid, image.id, editor.current, saved.current));
  };
  flushRef.current = save;
  useEffect(() => {
    saved.current = new Map(initial.map((r) => [r.id, sig(r)]));
    if (suggestionsMode === 'always') {
      setSuggestions((image.suggestions || []).map((p) => ({ ...p.boundingBox, tagId: p.tagId, tagName: p.tagName,
        probability: p.probability })));
      setNote('Suggested regions are dashed: click one to accept it (x rejects it), or Confirm to accept them all.');
      return undefined;
    }
    const latest = latestCompleted(ctx.iterations);
    if (!latest) { setNote('Drag on the image to draw a region round each object, then pick its tag.'); return undefined; }
    setNote(`Rest the pointer on an object to see the region ${latest.name} detects there; click it to select it.`);
    let live = true;
    training.getImageRegionProposals(pid, image.id).then((res) => {
      if (!live) return;
      setSuggestions(res.proposals.filter((p) => p.confidence >= PROPOSAL_MIN_CONFIDENCE).slice(0, PROPOSAL_MAX)
        .map((p) => ({ ...p.boundingBox, probability: p.confidence })));
    }, () => {});
    return () => { live = false; flushRef.current = null; };
  }, []);
  const onChange = (list) => {
    setRegions(list);
    setHistory((n) => n + 1);
    dirty.current = true;
    clearTimeout(timer.current);
    timer.current = setTimeout(save, 150);
  };
  const createTag = async (name) => {
    const tag = await training.createTag(pid, name);
    await ctx.reloadTags();
    return tag;
  };
  const confirm = async () => {
    editor.current.acceptAllSuggestions();
    await save();
    toast('Suggested regions confirmed');
    if (onConfirmed) onConfirmed(image.id);
  };
  const e = editor.current;
  return html`<div class="detail-main">
      <${RegionsPane} imageKey=${image.id} src=${image.resizedImageUri || image.originalImageUri}
        alt=${`Image, ${plural(initial.length, 'region')} when opened`} regions=${initial} tags=${tags} suggestions=${suggestions}
        suggestionsMode=${suggestionsMode} onChange=${onChange} onSelect=${setSelected} apiRef=${editor}
        createTag=${createTag} />
      <p class="muted small">${note}</p>
    </div>
    <aside class="detail-side" aria-label="Regions">
      <h3>Regions</h3>
      <div class="buttons left">
        <button type="button" class="secondary" disabled=${!e || !e.canUndo} onClick=${() => e.undo()}>Undo</button>
        <button type="button" class="secondary" disabled=${!e || !e.canRedo} onClick=${() => e.redo()}>Redo</button>
        ${suggestionsMode === 'always' && html`<button type="button" class="primary" onClick=${confirm}>
          ${icon('check')} Confirm</button>`}
      </div>
      ${!regions.filter((r) => r.tagId).length && html`<p class="muted">No regions yet.</p>`}
      <ol class="region-list">
        ${regions.filter((r) => r.tagId).map((r) => html`<li key=${r.key}
          class=${selected && selected.key === r.key ? 'selected' : ''}>
          <button type="button" class="link" onClick=${() => e.select(r.key)}>${r.tagName}</button>
          <button type="button" class="icon-button small" aria-label=${`Delete region ${r.tagName}`}
            onClick=${() => e.remove(r.key)}>${icon('trash')}</button></li>`)}
      </ol>
      <h3>Tags</h3>
      <ol class="tag-keys">${tags.map((t, i) => html`<li key=${t.id}>${i < 9 && html`<kbd>${i + 1}</kbd> `}${t.name}</li>`)}</ol>
      <details class="shortcuts"><summary>Keyboard shortcuts</summary>
        <ul>
          <li><kbd>Left</kbd> / <kbd>Right</kbd>: previous / next image (nothing selected)</li>
          <li>Drag: draw (also inside a region); click a region to select it, then drag to move it or its
            handles to resize it; <kbd>Shift</kbd>+drag always draws</li>
          <li><kbd>1</kbd>-<kbd>9</kbd>: tag the selected region; <kbd>Enter</kbd>: tag list</li>
          <li><kbd>Delete</kbd>: delete it; arrows move it, <kbd>Alt</kbd>+arrows resize it</li>
          <li><kbd>[</kbd> / <kbd>]</kbd>: select the previous / next region; <kbd>Esc</kbd>: deselect</li>
          <li><kbd>Ctrl</kbd>+<kbd>Z</kbd> / <kbd>Ctrl</kbd>+<kbd>Y</kbd>: undo / redo</li>
          <li><kbd>A</kbd> / <kbd>X</kbd>: accept / reject the suggested region under the pointer</li>
        </ul></details>
      <${Metadata} image=${image} />
    </aside>`;
}

function ClassificationTagger({ image, queue, refresh, setError }) {
  const ctx = useProject();
  const pid = ctx.project.id;
  const multiclass = ctx.project.settings.classificationType === 'Multiclass';
  const [typed, setTyped] = useState('');
  const has = new Set((image.tags || []).map((t) => t.tagId));
  const regular = ctx.tags.filter((t) => t.type !== 'Negative');
  const negative = ctx.tags.find((t) => t.type === 'Negative');
  const apply = (add, removeIds = []) => queue(async () => {
    if (removeIds.length) await training.deleteImageTags(pid, [image.id], removeIds);
    if (add) await training.createImageTags(pid, [[image.id, add]]);
    await refresh();
    await ctx.reloadTags();
  });
  const toggle = (tag) => {
    if (has.has(tag.id)) return apply(null, [tag.id]);
    const others = [...has].filter((id) => {
      const t = ctx.tags.find((x) => x.id === id);
      return tag.type === 'Negative' || (t && t.type === 'Negative') || multiclass;
    });
    return apply(tag.id, others);  // multiclass: one tag per image; Negative never with a regular tag
  };
  const addTyped = async (e) => {
    e.preventDefault();
    const name = typed.trim();
    if (!name) return;
    try {
      let tag = ctx.tags.find((t) => t.name.toLowerCase() === name.toLowerCase());
      if (!tag) {
        tag = await training.createTag(pid, name, name.toLowerCase() === 'negative' ? 'Negative' : undefined);
        await ctx.reloadTags();
      }
      setTyped('');
      await toggle(tag);
    } catch (err) { setError(err); }
  };
  const toggleNegative = async () => {
    try {
      let tag = negative;
      if (!tag) { tag = await training.createTag(pid, 'Negative', 'Negative'); await ctx.reloadTags(); }
      await toggle(tag);
    } catch (err) { setError(err); }
  };
  useWindowKeys((e) => {
    if (['INPUT', 'TEXTAREA', 'SELECT'].includes(e.target.tagName) || e.ctrlKey || e.metaKey || e.altKey) return;
    if (/^[1-9]$/.test(e.key) && regular[Number(e.key) - 1]) { e.preventDefault(); toggle(regular[Number(e.key) - 1]); }
    if (e.key === '0') { e.preventDefault(); toggleNegative(); }
  });
  return html`<div class="detail-main">
      <img class="detail-img" src=${image.resizedImageUri || image.originalImageUri}
        alt=${`Image tagged ${(image.tags || []).map((t) => t.tagName).join(', ') || 'with nothing yet'}`} />
    </div>
    <aside class="detail-side" aria-label="Image tags">
      <h3>Image tags</h3>
      <div class="chips" aria-live="polite">
        ${(image.tags || []).map((t) => html`<${Chip} key=${t.tagId} name=${t.tagName}
          kind=${negative && t.tagId === negative.id ? 'negative' : ''}
          onRemove=${() => apply(null, [t.tagId])} />`)}
        ${!(image.tags || []).length && html`<span class="muted">No tags yet</span>`}
      </div>
      <form class="add-tag" onSubmit=${addTyped}>
        <input aria-label="Add a tag" list="detail-tags" placeholder="Add a tag" value=${typed}
          onInput=${(e) => setTyped(e.currentTarget.value)} />
        <datalist id="detail-tags">${ctx.tags.map((t) => html`<option value=${t.name} />`)}</datalist>
        <button type="submit" class="icon-button" aria-label="Add tag" title="Add tag">${icon('plus')}</button>
      </form>
      <div class="tag-buttons" role="group" aria-label="Tags">
        ${regular.map((t, i) => html`<button type="button" key=${t.id} class="toggle" aria-pressed=${has.has(t.id)}
          onClick=${() => toggle(t)}>${i < 9 && html`<kbd aria-hidden="true">${i + 1}</kbd> `}${t.name}</button>`)}
        <button type="button" class="toggle negative" aria-pressed=${Boolean(negative && has.has(negative.id))}
          onClick=${toggleNegative} title="Negative: none of the other tags (classification only)">
          <kbd aria-hidden="true">0</kbd> Negative</button>
      </div>
      <p class="muted small">${multiclass ? 'Multiclass: one tag per image (a new tag replaces the old one).'
        : 'Multilabel: any number of tags per image.'} Keys 1-9 toggle a tag, 0 the Negative tag,
        Left / Right move between images.</p>
      <${Metadata} image=${image} />
    </aside>`;
}
