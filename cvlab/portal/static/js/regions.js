// regions.js: a framework-free editor for rectangular regions on an image, as Custom Vision's Image Detail has.
//
// Self-contained on purpose (no import, no global but one adopted style sheet): the portal uses it, and the notebook
// box labeler can load the very same file through anywidget. Coordinates in and out are normalised to the image:
// {left, top, width, height} in 0..1, as Azure's regions are.
//
//   const editor = createRegionEditor(element, {src, regions, tags, onChange, createTag});
//
// Drawing: drag anywhere, also inside another region. Moving or resizing needs the region selected first (click
// it), so a stray drag never moves a box by accident; Shift+drag always draws. Suggestions (automatically detected
// regions) are dashed boxes: shown while the pointer rests on them ("hover") or all at once ("always"); click one
// to accept it, its x (or the x key) rejects it. Keys on the focused editor: Delete/Backspace delete, Escape
// deselects, Ctrl+Z / Ctrl+Shift+Z (or Ctrl+Y) undo / redo, arrows move (Shift: further), Alt+arrows resize,
// [ and ] select the previous / next region, Enter or T opens the tag list, 1-9 pick a tag, A accepts and X rejects
// the suggestion under the pointer. Arrow keys with nothing selected are left to the page (next / previous image).

const CSS = `
.cvr{position:relative;display:inline-block;outline:none;max-width:100%;touch-action:none;user-select:none}
.cvr:focus-visible{box-shadow:0 0 0 3px #4f9ee8}
.cvr-stage{position:relative;display:inline-block;line-height:0;cursor:crosshair;max-width:100%}
.cvr-img{display:block;max-width:100%;max-height:var(--cvr-max-height,70vh);-webkit-user-drag:none}
.cvr-layer{position:absolute;inset:0;pointer-events:none}
.cvr-region,.cvr-suggestion,.cvr-draft{position:absolute;box-sizing:border-box}
.cvr-region{border:2px solid var(--cvr-colour,#36c);background:rgba(51,102,204,.08)}
.cvr-region.cvr-pending{border-style:dashed;border-color:#e67700;background:rgba(230,119,0,.10)}
.cvr-region.cvr-selected{border-color:#f5c400;box-shadow:0 0 0 1px #000 inset;background:rgba(245,196,0,.12);cursor:move}
.cvr-label{position:absolute;left:-2px;top:-1.6em;line-height:1.5em;padding:0 .4em;font:600 12px/1.5em system-ui,sans-serif;
  color:#fff;background:var(--cvr-colour,#36c);white-space:nowrap;max-width:16em;overflow:hidden;text-overflow:ellipsis}
.cvr-region.cvr-below .cvr-label,.cvr-suggestion.cvr-below .cvr-label{top:auto;bottom:-1.6em}
.cvr-pending .cvr-label{background:#e67700}.cvr-selected .cvr-label{background:#f5c400;color:#000}
.cvr-handle{position:absolute;width:12px;height:12px;margin:-6px 0 0 -6px;background:#fff;border:2px solid #000;
  box-sizing:border-box;pointer-events:auto}
.cvr-handle[data-edge=nw],.cvr-handle[data-edge=se]{cursor:nwse-resize}.cvr-handle[data-edge=ne],.cvr-handle[data-edge=sw]{cursor:nesw-resize}
.cvr-handle[data-edge=n],.cvr-handle[data-edge=s]{cursor:ns-resize}.cvr-handle[data-edge=e],.cvr-handle[data-edge=w]{cursor:ew-resize}
.cvr-suggestion{border:2px dashed #fff;outline:2px dashed #111;outline-offset:-4px;display:none;background:rgba(255,255,255,.10)}
.cvr-suggestion.cvr-shown{display:block}
.cvr-suggestion .cvr-label{background:#111}
.cvr-x{position:absolute;right:-2px;top:-2px;transform:translateY(-100%);pointer-events:auto;font:600 12px/1 system-ui,sans-serif;
  background:#111;color:#fff;border:0;padding:3px 6px;cursor:pointer}
.cvr-x:focus-visible{outline:2px solid #4f9ee8}
.cvr-draft{border:2px dashed #f5c400;background:rgba(245,196,0,.15)}
.cvr-picker{position:absolute;z-index:5;min-width:14em;max-width:20em;background:#fff;color:#111;border:1px solid #888;
  box-shadow:0 4px 16px rgba(0,0,0,.3);padding:.5em;font:14px/1.4 system-ui,sans-serif;line-height:1.4}
.cvr-picker[hidden]{display:none}
.cvr-picker-row{display:flex;gap:.3em}
.cvr-picker input{flex:1;min-width:0;font:inherit;padding:.25em .4em;border:1px solid #888}
.cvr-picker button{font:inherit;cursor:pointer}
.cvr-picker ul{list-style:none;margin:.4em 0 0;padding:0;max-height:12em;overflow:auto}
.cvr-picker li button{display:block;width:100%;text-align:left;border:0;background:none;padding:.2em .4em}
.cvr-picker li button[aria-selected=true]{background:#dbe9fb}
.cvr-picker .cvr-key{color:#666;float:right;font-size:.85em}
.cvr-live{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
`;

const MIN_SIZE = 0.01;        // a box narrower or lower than 1 % of the image is a click, not a draw
const DRAG_START_PX = 4;      // pointer travel before a press becomes a drag
const HOVER_DELAY_MS = 200;   // how long the pointer rests before an automatically detected region shows
const EDGES = ['nw', 'n', 'ne', 'e', 'se', 's', 'sw', 'w'];

let sheet = null;
function adoptStyles(doc) {
  if (!doc || !('adoptedStyleSheets' in doc)) return;
  if (!sheet) { sheet = new CSSStyleSheet(); sheet.replaceSync(CSS); }
  if (!doc.adoptedStyleSheets.includes(sheet)) doc.adoptedStyleSheets = [...doc.adoptedStyleSheets, sheet];
}

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
const clone = (list) => list.map((r) => ({ ...r }));
const inside = (r, p) => p.x >= r.left && p.x <= r.left + r.width && p.y >= r.top && p.y <= r.top + r.height;
const area = (r) => r.width * r.height;
let nextKey = 1;
const newKey = () => `r${nextKey++}`;

function el(doc, tag, cls, attrs = {}) {
  const node = doc.createElement(tag);
  if (cls) node.className = cls;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function normalise(r) {
  const width = clamp(Number(r.width) || 0, 0, 1);
  const height = clamp(Number(r.height) || 0, 0, 1);
  return { left: clamp(Number(r.left) || 0, 0, 1 - width), top: clamp(Number(r.top) || 0, 0, 1 - height), width, height };
}

/** Create an editor inside `host` (an element). See the module comment for what it does. */
export function createRegionEditor(host, options = {}) {
  return new RegionEditor(host, options);
}

export class RegionEditor {
  constructor(host, options = {}) {
    this.host = host;
    this.doc = host.ownerDocument;
    this.opts = options;
    this.tags = [];
    this.regions = [];
    this.suggestions = [];
    this.mode = options.suggestionMode || 'hover';
    this.selected = null;
    this.hovered = null;
    this.undoStack = [];
    this.redoStack = [];
    this.lastTagId = null;
    this.drag = null;
    if (options.styles !== false) adoptStyles(this.doc);
    this._build();
    this.setTags(options.tags || []);
    this.setImage(options.src || '', options.alt);
    this.setRegions(options.regions || []);
    this.setSuggestions(options.suggestions || [], this.mode);
  }

  // ---- public API -------------------------------------------------------------------------------------------
  setImage(src, alt) {
    this.img.alt = alt || 'Image to label';
    if (src && this.img.getAttribute('src') !== src) this.img.src = src;
  }

  /** Replace the regions; by default this also forgets the undo history (a new image). */
  setRegions(regions, { resetHistory = true } = {}) {
    this.regions = (regions || []).map((r) => ({
      key: r.key || newKey(), id: r.id ?? r.regionId ?? null, tagId: r.tagId ?? null,
      tagName: r.tagName ?? this._tagName(r.tagId), ...normalise(r) }));
    if (resetHistory) { this.undoStack = []; this.redoStack = []; }
    if (!this.regions.some((r) => r.key === this.selected)) this.selected = null;
    this._closePicker();
    this._render();
  }

  /** The regions as they are now: [{key, id, tagId, tagName, left, top, width, height}] (tagId null = untagged). */
  getRegions() { return clone(this.regions); }

  setTags(tags) {
    this.tags = (tags || []).map((t) => ({ id: t.id, name: t.name }));
    for (const r of this.regions) if (r.tagId) r.tagName = this._tagName(r.tagId) ?? r.tagName;
    if (this.picker && !this.picker.hidden) this._fillPicker();
    this._render();
  }

  /** Suggested boxes ({left, top, width, height, tagId?, tagName?, probability?}); mode "hover" or "always". */
  setSuggestions(list, mode = this.mode) {
    this.mode = mode;
    this.suggestions = (list || []).map((s) => ({ key: newKey(), tagId: s.tagId ?? null, tagName: s.tagName ?? null,
      probability: s.probability ?? null, ...normalise(s) }));
    this.hovered = null;
    this._render();
  }

  /** The host saved region `key` under `id` (no history entry, no change event). */
  setRegionId(key, id) {
    const r = this.regions.find((x) => x.key === key);
    if (r) r.id = id;
  }

  acceptAllSuggestions() {
    const usable = this.suggestions.filter((s) => s.tagId);
    if (!usable.length) return;
    this._mutate('accept', () => {
      for (const s of usable) this.regions.push(this._fromSuggestion(s));
      this.suggestions = this.suggestions.filter((s) => !s.tagId);
    });
    this._say(`${usable.length} suggested regions accepted`);
  }

  get canUndo() { return this.undoStack.length > 0; }
  get canRedo() { return this.redoStack.length > 0; }

  undo() {
    if (!this.undoStack.length) return;
    this._dropPending();
    this.redoStack.push(clone(this.regions));
    this.regions = this.undoStack.pop();
    this._afterHistory('undo');
  }

  redo() {
    if (!this.redoStack.length) return;
    this._dropPending();
    this.undoStack.push(clone(this.regions));
    this.regions = this.redoStack.pop();
    this._afterHistory('redo');
  }

  /** Delete region `key` (an undoable change, as the Delete key does). */
  remove(key) {
    const r = this.regions.find((x) => x.key === key);
    if (r) this._delete(r);
  }

  select(key) {
    this.selected = this.regions.some((r) => r.key === key) ? key : null;
    this._render();
    this._emitSelect();
  }

  focus() { this.root.focus({ preventScroll: true }); }

  destroy() {
    clearTimeout(this.hoverTimer);
    this.root.remove();
  }

  // ---- building ---------------------------------------------------------------------------------------------
  _build() {
    const d = this.doc;
    const labels = this.opts.labels || {};
    this.root = el(d, 'div', 'cvr', { tabindex: '0', role: 'group',
      'aria-label': labels.editor || 'Image regions: drag to draw a region' });
    this.stage = el(d, 'div', 'cvr-stage');
    this.img = el(d, 'img', 'cvr-img', { draggable: 'false' });
    this.layer = el(d, 'div', 'cvr-layer');
    this.draft = el(d, 'div', 'cvr-draft');
    this.draft.hidden = true;
    this.stage.append(this.img, this.layer, this.draft);
    this.picker = el(d, 'div', 'cvr-picker', { role: 'dialog', 'aria-label': labels.picker || 'Tag this region' });
    this.picker.hidden = true;
    this.live = el(d, 'div', 'cvr-live', { 'aria-live': 'polite' });
    this.root.append(this.stage, this.picker, this.live);
    this.host.append(this.root);
    this.img.addEventListener('load', () => this._render());
    this.img.addEventListener('dragstart', (e) => e.preventDefault());
    this.stage.addEventListener('pointerdown', (e) => this._down(e));
    this.stage.addEventListener('pointermove', (e) => this._move(e));
    this.stage.addEventListener('pointerup', (e) => this._up(e));
    this.stage.addEventListener('pointercancel', () => this._cancelDrag());
    this.stage.addEventListener('pointerleave', () => { if (!this.drag) this._hover(null); });
    this.root.addEventListener('keydown', (e) => this._key(e));
  }

  _tagName(id) {
    const t = this.tags.find((x) => x.id === id);
    return t ? t.name : null;
  }

  _point(e) {
    const box = this.img.getBoundingClientRect();
    return { x: clamp((e.clientX - box.left) / (box.width || 1), 0, 1),
      y: clamp((e.clientY - box.top) / (box.height || 1), 0, 1), px: e.clientX, py: e.clientY };
  }

  _selectedRegion() { return this.regions.find((r) => r.key === this.selected) || null; }

  _innermost(list, p) {
    return list.filter((r) => inside(r, p)).sort((a, b) => area(a) - area(b))[0] || null;
  }

  _visibleSuggestions() {
    return this.mode === 'always' ? this.suggestions : this.suggestions.filter((s) => s.key === this.hovered);
  }

  // ---- pointer ----------------------------------------------------------------------------------------------
  _down(e) {
    if (e.button !== 0 || e.target.closest('button')) return;
    this._closePicker(true);  // a press outside the tag list drops a region that was never tagged
    this.focus();
    const p = this._point(e);
    const sel = this._selectedRegion();
    const handle = e.target.closest('.cvr-handle');
    if (handle && sel) this.drag = { mode: 'resize', edge: handle.dataset.edge, origin: p, start: { ...sel } };
    else if (sel && !e.shiftKey && inside(sel, p)) this.drag = { mode: 'maybe-move', origin: p, start: { ...sel } };
    else this.drag = { mode: 'maybe-draw', origin: p, force: e.shiftKey };
    this.drag.before = clone(this.regions.filter((r) => r.tagId));
    this.stage.setPointerCapture(e.pointerId);
    e.preventDefault();
  }

  _move(e) {
    const p = this._point(e);
    const drag = this.drag;
    if (!drag) {
      const over = e.target.closest && e.target.closest('.cvr-suggestion');
      if (over) { this._hover(over.dataset.key); return; }  // on its reject button: keep it shown
      const s = this._innermost(this.suggestions, p);
      this._hover(s && !this._innermostCovered(s, p) ? s.key : null);
      return;
    }
    const travelled = Math.hypot(p.px - drag.origin.px, p.py - drag.origin.py);
    if (drag.mode === 'maybe-move' && travelled > DRAG_START_PX) drag.mode = 'move';
    if (drag.mode === 'maybe-draw' && travelled > DRAG_START_PX) drag.mode = 'draw';
    if (drag.mode === 'draw') {
      drag.box = this._box(drag.origin, p);
      Object.assign(this.draft.style, this._css(drag.box));
      this.draft.hidden = false;
    } else if (drag.mode === 'move' || drag.mode === 'resize') {
      const r = this._selectedRegion();
      if (!r) return;
      Object.assign(r, drag.mode === 'move' ? this._moved(drag.start, p.x - drag.origin.x, p.y - drag.origin.y)
        : this._resized(drag.start, drag.edge, p));
      this._render();
    }
  }

  _innermostCovered(s, p) {
    // A saved region drawn over the suggestion hides it, so accepted objects don't flash their suggestion again.
    return this.regions.some((r) => inside(r, p) && Math.abs(r.left - s.left) < 0.02 && Math.abs(r.top - s.top) < 0.02
      && Math.abs(r.width - s.width) < 0.02 && Math.abs(r.height - s.height) < 0.02);
  }

  _up(e) {
    const drag = this.drag;
    this.drag = null;
    if (!drag) return;
    try { this.stage.releasePointerCapture(e.pointerId); } catch (_) { /* already released */ }
    this.draft.hidden = true;
    const p = this._point(e);
    if (drag.mode === 'draw') {
      const box = drag.box || this._box(drag.origin, p);
      if (box.width >= MIN_SIZE && box.height >= MIN_SIZE) this._addPending(box, drag.before);
      return;
    }
    if (drag.mode === 'move' || drag.mode === 'resize') {
      const r = this._selectedRegion();
      if (r && ['left', 'top', 'width', 'height'].some((k) => Math.abs(r[k] - drag.start[k]) > 1e-6)) {
        r.id = null;
        this._record(drag.before, drag.mode);
        this._say(`Region ${drag.mode === 'move' ? 'moved' : 'resized'}`);
      }
      this._render();
      return;
    }
    this._click(p);
  }

  _cancelDrag() {
    if (this.drag && this.drag.before && (this.drag.mode === 'move' || this.drag.mode === 'resize')) {
      this.regions = this.drag.before;
    }
    this.drag = null;
    this.draft.hidden = true;
    this._render();
  }

  _click(p) {
    const shown = this._visibleSuggestions();
    const s = this._innermost(shown, p);
    const r = this._innermost(this.regions, p);
    if (s && (!r || area(s) <= area(r))) { this._accept(s); return; }
    if (r) {
      this.select(r.key);
      if (!r.tagId) this._openPicker(r);
      return;
    }
    this._closePicker(true);
    this.select(null);
  }

  _hover(key) {
    if (this.mode === 'always' || key === this.hovered) return;
    clearTimeout(this.hoverTimer);
    if (key === null) { this.hovered = null; this._render(); return; }
    this.hoverTimer = setTimeout(() => { this.hovered = key; this._render(); }, HOVER_DELAY_MS);
  }

  _box(a, b) {
    const left = Math.min(a.x, b.x);
    const top = Math.min(a.y, b.y);
    return { left, top, width: Math.abs(a.x - b.x), height: Math.abs(a.y - b.y) };
  }

  _moved(r, dx, dy) {
    return { left: clamp(r.left + dx, 0, 1 - r.width), top: clamp(r.top + dy, 0, 1 - r.height) };
  }

  _resized(r, edge, p) {
    let x0 = r.left;
    let y0 = r.top;
    let x1 = r.left + r.width;
    let y1 = r.top + r.height;
    if (edge.includes('w')) x0 = Math.min(p.x, x1 - MIN_SIZE);
    if (edge.includes('e')) x1 = Math.max(p.x, x0 + MIN_SIZE);
    if (edge.includes('n')) y0 = Math.min(p.y, y1 - MIN_SIZE);
    if (edge.includes('s')) y1 = Math.max(p.y, y0 + MIN_SIZE);
    return { left: clamp(x0, 0, 1), top: clamp(y0, 0, 1), width: clamp(x1, 0, 1) - clamp(x0, 0, 1),
      height: clamp(y1, 0, 1) - clamp(y0, 0, 1) };
  }

  // ---- changes and history ----------------------------------------------------------------------------------
  _record(before, reason) {
    this.undoStack.push(before);
    this.redoStack = [];
    this._emit(reason);
  }

  _mutate(reason, fn) {
    const before = clone(this.regions.filter((r) => r.tagId));
    fn();
    this._record(before, reason);
    this._render();
  }

  _afterHistory(reason) {
    if (!this.regions.some((r) => r.key === this.selected)) this.selected = null;
    this._closePicker();
    this._render();
    this._emit(reason);
    this._say(reason === 'undo' ? 'Undone' : 'Redone');
  }

  _emit(reason) {
    if (this.opts.onChange) this.opts.onChange(this.getRegions(), { reason });
  }

  _emitSelect() {
    if (this.opts.onSelect) this.opts.onSelect(this._selectedRegion() ? { ...this._selectedRegion() } : null);
  }

  _say(text) {
    this.live.textContent = '';
    this.live.textContent = text;
  }

  _addPending(box, before) {
    this._dropPending();
    const region = { key: newKey(), id: null, tagId: null, tagName: null, ...normalise(box), pending: true,
      before: before.filter((r) => r.tagId) };
    this.regions.push(region);
    this.selected = region.key;
    this._render();
    this._openPicker(region);
    this._emitSelect();
  }

  _dropPending() {
    const n = this.regions.length;
    this.regions = this.regions.filter((r) => !r.pending);
    if (this.regions.length !== n && !this.regions.some((r) => r.key === this.selected)) this.selected = null;
  }

  _fromSuggestion(s) {
    return { key: newKey(), id: null, tagId: s.tagId, tagName: s.tagName || this._tagName(s.tagId),
      left: s.left, top: s.top, width: s.width, height: s.height };
  }

  _accept(s) {
    this.suggestions = this.suggestions.filter((x) => x.key !== s.key);
    this.hovered = null;
    if (s.tagId) {
      const region = this._fromSuggestion(s);
      this._mutate('accept', () => this.regions.push(region));
      this.select(region.key);
      this._say(`Suggested ${region.tagName || 'region'} accepted`);
    } else {
      this._addPending(s, clone(this.regions));
      this._say('Suggested region selected: pick its tag');
    }
  }

  _reject(s) {
    this.suggestions = this.suggestions.filter((x) => x.key !== s.key);
    this.hovered = null;
    this._render();
    this._say('Suggested region rejected');
    if (this.opts.onReject) this.opts.onReject({ ...s });
  }

  _assign(region, tag) {
    this.lastTagId = tag.id;
    if (region.pending) {
      const before = region.before;
      delete region.pending;
      delete region.before;
      Object.assign(region, { tagId: tag.id, tagName: tag.name, id: null });
      this._record(before, 'draw');
      this.selected = null;  // tagged: the next drag draws again, even inside this region
      this._say(`${tag.name} region added`);
    } else if (region.tagId !== tag.id) {
      const before = clone(this.regions.filter((r) => r.tagId));
      Object.assign(region, { tagId: tag.id, tagName: tag.name, id: null });
      this._record(before, 'tag');
      this._say(`Region tagged ${tag.name}`);
    }
    this._closePicker();
    this._render();
    this._emitSelect();
    this.focus();
  }

  _delete(region) {
    if (region.pending) { this._dropPending(); this._closePicker(); this._render(); return; }
    this._mutate('delete', () => { this.regions = this.regions.filter((r) => r.key !== region.key); });
    this.selected = null;
    this._render();
    this._emitSelect();
    this._say(`${region.tagName || 'Region'} region deleted`);
  }

  // ---- tag picker -------------------------------------------------------------------------------------------
  _orderedTags(filter) {
    const f = (filter || '').trim().toLowerCase();
    const list = this.tags.filter((t) => !f || t.name.toLowerCase().includes(f));
    const last = list.findIndex((t) => t.id === this.lastTagId);
    if (!f && last > 0) list.unshift(...list.splice(last, 1));
    return list;
  }

  _openPicker(region) {
    this.pickerRegion = region.key;
    this.highlight = 0;
    const d = this.doc;
    const labels = this.opts.labels || {};
    this.picker.replaceChildren();
    const row = el(d, 'div', 'cvr-picker-row');
    this.pickerInput = el(d, 'input', '', { type: 'text', 'aria-label': labels.tagInput || 'Tag name',
      placeholder: this.opts.createTag ? 'Type a tag, Enter' : 'Filter tags', autocomplete: 'off' });
    row.append(this.pickerInput);
    if (this.opts.createTag) {
      const add = el(d, 'button', 'cvr-add', { type: 'button', 'aria-label': labels.addTag || 'Add tag',
        title: 'Add this tag' });
      add.textContent = '+';
      add.addEventListener('click', () => this._pickTyped());
      row.append(add);
    }
    this.pickerList = el(d, 'ul', '', { role: 'listbox', 'aria-label': labels.tagList || 'Tags' });
    this.picker.append(row, this.pickerList);
    this.pickerInput.addEventListener('input', () => { this.highlight = 0; this._fillPicker(); });
    this.pickerInput.addEventListener('keydown', (e) => this._pickerKey(e));
    this._fillPicker();
    this.picker.hidden = false;
    this._placePicker(region);
    this.pickerInput.focus({ preventScroll: true });
  }

  _placePicker(region) {
    const w = this.stage.clientWidth || 1;
    const h = this.stage.clientHeight || 1;
    const below = (region.top + region.height) * h + 4;
    const top = below + 150 > h ? Math.max(0, region.top * h - 150) : below;
    this.picker.style.left = `${Math.min(region.left * w, Math.max(0, w - 230))}px`;
    this.picker.style.top = `${top}px`;
  }

  _fillPicker() {
    const d = this.doc;
    const list = this._orderedTags(this.pickerInput.value);
    this.pickerList.replaceChildren();
    list.forEach((t, i) => {
      const li = el(d, 'li');
      const b = el(d, 'button', '', { type: 'button', role: 'option', 'aria-selected': String(i === this.highlight) });
      b.textContent = t.name;
      const n = this.tags.indexOf(this.tags.find((x) => x.id === t.id)) + 1;
      if (n <= 9) { const k = el(d, 'span', 'cvr-key'); k.textContent = String(n); b.append(k); }
      b.addEventListener('click', () => this._assignPicked(t));
      li.append(b);
      this.pickerList.append(li);
    });
  }

  _assignPicked(tag) {
    const region = this.regions.find((r) => r.key === this.pickerRegion);
    if (region) this._assign(region, tag);
  }

  async _pickTyped() {
    const name = this.pickerInput.value.trim();
    const listed = this._orderedTags(this.pickerInput.value);
    if (!name) { if (listed[this.highlight]) this._assignPicked(listed[this.highlight]); return; }
    const exact = this.tags.find((t) => t.name.toLowerCase() === name.toLowerCase());
    if (exact) { this._assignPicked(exact); return; }
    if (!this.opts.createTag) { if (listed[this.highlight]) this._assignPicked(listed[this.highlight]); return; }
    try {
      const tag = await this.opts.createTag(name);
      if (!this.tags.some((t) => t.id === tag.id)) this.tags.push({ id: tag.id, name: tag.name });
      this._assignPicked(tag);
    } catch (err) {
      this._say(String(err && err.message || err));
    }
  }

  _pickerKey(e) {
    const listed = this._orderedTags(this.pickerInput.value);
    if (e.key === 'Enter') { e.preventDefault(); e.stopPropagation(); this._pickTyped(); }
    else if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); this._closePicker(true); this.focus(); }
    else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      e.stopPropagation();
      this.highlight = clamp(this.highlight + (e.key === 'ArrowDown' ? 1 : -1), 0, Math.max(0, listed.length - 1));
      this._fillPicker();
    } else e.stopPropagation();  // typing in the box is not an editor shortcut
  }

  _closePicker(cancelPending = false) {
    if (!this.picker || this.picker.hidden) return;
    this.picker.hidden = true;
    this.pickerRegion = null;
    if (cancelPending) { this._dropPending(); this._render(); }
  }

  // ---- keyboard ---------------------------------------------------------------------------------------------
  _key(e) {
    if (e.target !== this.root) return;  // buttons and the tag box handle their own keys
    const ctrl = e.ctrlKey || e.metaKey;
    const key = e.key;
    const sel = this._selectedRegion();
    const done = () => { e.preventDefault(); e.stopPropagation(); };
    if (ctrl && (key === 'z' || key === 'Z')) { done(); if (e.shiftKey) this.redo(); else this.undo(); return; }
    if (ctrl && (key === 'y' || key === 'Y')) { done(); this.redo(); return; }
    if (ctrl || e.altKey && !key.startsWith('Arrow')) return;
    if ((key === 'Delete' || key === 'Backspace') && sel) { done(); this._delete(sel); return; }
    if (key === 'Escape' && (sel || !this.picker.hidden)) { done(); this._closePicker(true); this.select(null); return; }
    if ((key === 'Enter' || key === 't' || key === 'T') && sel) { done(); this._openPicker(sel); return; }
    if (key === '[' || key === ']') {
      if (!this.regions.length) return;
      done();
      const i = this.regions.findIndex((r) => r.key === this.selected);
      const n = this.regions.length;
      const next = i < 0 ? (key === ']' ? 0 : n - 1) : (i + (key === ']' ? 1 : -1) + n) % n;
      this.select(this.regions[next].key);
      this._say(`${this.regions[next].tagName || 'Untagged'} region ${next + 1} of ${n} selected`);
      return;
    }
    if (/^[1-9]$/.test(key) && sel) {
      const tag = this.tags[Number(key) - 1];
      if (tag) { done(); this._assign(sel, tag); }
      return;
    }
    const hovered = this.suggestions.find((s) => s.key === this.hovered) || (this.mode === 'always' && this.suggestions[0]);
    if ((key === 'a' || key === 'A') && hovered) { done(); this._accept(hovered); return; }
    if ((key === 'x' || key === 'X') && hovered) { done(); this._reject(hovered); return; }
    if (key.startsWith('Arrow') && sel && !sel.pending) {
      done();
      const step = e.shiftKey ? 0.05 : 0.01;
      const dx = key === 'ArrowLeft' ? -step : key === 'ArrowRight' ? step : 0;
      const dy = key === 'ArrowUp' ? -step : key === 'ArrowDown' ? step : 0;
      this._mutate(e.altKey ? 'resize' : 'move', () => {
        const next = e.altKey
          ? { width: clamp(sel.width + dx, MIN_SIZE, 1 - sel.left), height: clamp(sel.height + dy, MIN_SIZE, 1 - sel.top) }
          : this._moved(sel, dx, dy);
        Object.assign(sel, next, { id: null });
      });
    }
  }

  // ---- drawing the DOM --------------------------------------------------------------------------------------
  _css(r) {
    return { left: `${r.left * 100}%`, top: `${r.top * 100}%`, width: `${r.width * 100}%`, height: `${r.height * 100}%` };
  }

  _render() {
    if (!this.layer) return;
    const d = this.doc;
    const labels = this.opts.labels || {};
    this.layer.replaceChildren();
    for (const s of this.suggestions) {
      const box = el(d, 'div', `cvr-suggestion${this._visibleSuggestions().includes(s) ? ' cvr-shown' : ''}${s.top < 0.06 ? ' cvr-below' : ''}`,
        { 'data-key': s.key });
      Object.assign(box.style, this._css(s));
      const label = el(d, 'span', 'cvr-label');
      label.textContent = (s.tagName || this._tagName(s.tagId) || 'Detected') +
        (s.probability != null ? ` ${(s.probability * 100).toFixed(1)}%` : '');
      const x = el(d, 'button', 'cvr-x', { type: 'button', 'aria-label': labels.reject || 'Reject suggested region' });
      x.textContent = '\u00d7';
      x.addEventListener('click', (e) => { e.stopPropagation(); this._reject(s); });
      box.append(label, x);
      this.layer.append(box);
    }
    this.regions.forEach((r, i) => {
      const cls = ['cvr-region'];
      if (r.key === this.selected) cls.push('cvr-selected');
      if (!r.tagId) cls.push('cvr-pending');
      if (r.top < 0.06) cls.push('cvr-below');
      const box = el(d, 'div', cls.join(' '), { 'data-key': r.key });
      Object.assign(box.style, this._css(r));
      const label = el(d, 'span', 'cvr-label');
      label.textContent = r.tagName || 'untagged';
      box.append(label);
      if (r.key === this.selected && !r.pending) {
        for (const edge of EDGES) {
          const h = el(d, 'span', 'cvr-handle', { 'data-edge': edge });
          h.style.left = edge.includes('w') ? '0%' : edge.includes('e') ? '100%' : '50%';
          h.style.top = edge.includes('n') ? '0%' : edge.includes('s') ? '100%' : '50%';
          box.append(h);
        }
        const x = el(d, 'button', 'cvr-x', { type: 'button', 'aria-label': labels.deleteRegion || `Delete ${r.tagName || ''} region ${i + 1}`.replace('  ', ' ') });
        x.textContent = '\u00d7';
        x.addEventListener('click', (e) => { e.stopPropagation(); this._delete(r); });
        box.append(x);
      }
      this.layer.append(box);
    });
  }
}

export const REGION_EDITOR_CSS = CSS;
