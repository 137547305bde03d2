// box_labeler.js: the notebook face of the portal's region editor (cvlab/portal/static/js/regions.js, joined in
// front of this file by cvlab/widgets/boxes.py, so both faces draw, move, undo and accept suggestions the same way).
// The Python side owns the images and the workspace; this side owns the drawing and its undo history, and sends
// every change ("change" messages with all of the image's regions) to be saved at once.

function button(doc, label, title) {
  const b = doc.createElement('button');
  b.type = 'button';
  b.className = 'cvbl-btn';
  b.textContent = label;
  if (title) b.title = title;
  return b;
}

const BAR_CSS = `
.cvbl{font:14px/1.4 system-ui,sans-serif;color:#111}
.cvbl-bar{display:flex;flex-wrap:wrap;align-items:center;gap:.4em;margin:.3em 0}
.cvbl-btn{font:inherit;padding:.25em .7em;border:1px solid #888;background:#f5f5f5;border-radius:3px;cursor:pointer}
.cvbl-btn:disabled{opacity:.45;cursor:default}
.cvbl-where{margin-left:.5em}
.cvbl-hint{color:#555;font-size:12px;margin:.2em 0}
.cvbl-status{min-height:1.4em;font-size:13px}
.cvbl-status.cvbl-error{color:#c62828}.cvbl-status.cvbl-ok{color:#2e7d32}
.cvbl-suggest{font-size:13px}
`;

function render({ model, el }) {
  const doc = el.ownerDocument;
  const style = doc.createElement('style');
  style.textContent = BAR_CSS;
  const root = doc.createElement('div');
  root.className = 'cvbl cvlab-box-labeler';
  const title = doc.createElement('div');
  const bar = doc.createElement('div');
  bar.className = 'cvbl-bar';
  bar.setAttribute('role', 'toolbar');
  bar.setAttribute('aria-label', 'Images and history');
  const prev = button(doc, '◀ Previous', 'Previous image');
  const next = button(doc, 'Next ▶', 'Next image');
  const nextEmpty = button(doc, 'Next unlabelled', 'The next image without boxes');
  const undo = button(doc, 'Undo', 'Undo the last change (Ctrl+Z)');
  const redo = button(doc, 'Redo', 'Redo (Ctrl+Shift+Z)');
  const acceptAll = button(doc, 'Accept all suggestions', 'Keep every dashed suggestion');
  const where = doc.createElement('span');
  where.className = 'cvbl-where';
  const suggest = doc.createElement('label');
  suggest.className = 'cvbl-suggest';
  const slider = doc.createElement('input');
  slider.type = 'range'; slider.min = '0.05'; slider.max = '0.95'; slider.step = '0.05';
  slider.setAttribute('aria-label', 'Suggestion threshold');
  const shown = doc.createElement('span');
  suggest.append('Suggest ≥ ', slider, ' ', shown);
  bar.append(prev, next, nextEmpty, undo, redo, acceptAll, suggest, where);
  const hint = doc.createElement('div');
  hint.className = 'cvbl-hint';
  hint.textContent = 'Drag to draw a box, also inside another box; pick its tag. Click a box to select it, then '
    + 'drag it to move or pull a handle to resize; Shift+drag always draws. Dashed boxes are suggestions from the '
    + 'latest iteration: click one to accept it, its × to reject it. Delete removes the selected box.';
  const stage = doc.createElement('div');
  const status = doc.createElement('div');
  status.className = 'cvbl-status';
  status.setAttribute('role', 'status');
  root.append(style, title, bar, hint, stage, status);
  el.append(root);

  let pending = 0;
  const waiting = new Map();
  const editor = createRegionEditor(stage, {
    tags: model.get('tags'),
    suggestionMode: 'always',
    labels: { editor: 'Image: drag to draw a box' },
    onChange: (regions, { reason }) => {
      model.send({ kind: 'change', reason, regions: regions.filter((r) => r.tagId).map((r) => ({
        tag_id: r.tagId, left: r.left, top: r.top, width: r.width, height: r.height })) });
      refreshButtons();
    },
    onReject: (s) => model.send({ kind: 'reject', suggestion: s }),
    createTag: (name) => new Promise((resolve, reject) => {
      const request = ++pending;
      waiting.set(request, { resolve, reject });
      model.send({ kind: 'create_tag', name, request });
    }),
  });

  function refreshButtons() {
    undo.disabled = !editor.canUndo;
    redo.disabled = !editor.canRedo;
    const p = model.get('position');
    prev.disabled = !p.total || p.index <= 0;
    next.disabled = !p.total || p.index >= p.total - 1;
    nextEmpty.disabled = !p.unlabelled;
    acceptAll.disabled = !model.get('suggestions').some((s) => s.tagId);
    acceptAll.hidden = !model.get('has_iteration');
    suggest.hidden = !model.get('has_iteration');
  }

  function showImage() {
    const image = model.get('image');
    editor.setTags(model.get('tags'));
    editor.setImage(image.src || '', image.name);
    editor.setRegions(model.get('regions'));
    editor.setSuggestions(model.get('suggestions'), 'always');
    showPosition();
  }

  function showPosition() {
    const p = model.get('position');
    where.textContent = p.total ? `image ${p.index + 1} of ${p.total} · ${p.labelled} with boxes · ${p.unlabelled} without`
      : 'no images yet';
    refreshButtons();
  }

  function showStatus() {
    const s = model.get('status');
    status.textContent = s.text || '';
    status.className = `cvbl-status ${s.error ? 'cvbl-error' : 'cvbl-ok'}`;
  }

  title.innerHTML = '';
  const strong = doc.createElement('b');
  strong.textContent = 'Box labeling ';
  const name = doc.createElement('span');
  name.textContent = model.get('project_name');
  title.append(strong, name);
  slider.value = String(model.get('threshold'));
  shown.textContent = `${Math.round(model.get('threshold') * 100)} %`;

  prev.addEventListener('click', () => model.send({ kind: 'go', to: 'previous' }));
  next.addEventListener('click', () => model.send({ kind: 'go', to: 'next' }));
  nextEmpty.addEventListener('click', () => model.send({ kind: 'go', to: 'unlabelled' }));
  undo.addEventListener('click', () => { editor.undo(); refreshButtons(); });
  redo.addEventListener('click', () => { editor.redo(); refreshButtons(); });
  acceptAll.addEventListener('click', () => { editor.acceptAllSuggestions(); refreshButtons(); });
  slider.addEventListener('change', () => {
    model.set('threshold', Number(slider.value));
    model.save_changes();
    shown.textContent = `${Math.round(Number(slider.value) * 100)} %`;
  });

  const onMessage = (msg) => {
    if (msg.kind === 'tag_created' || msg.kind === 'tag_refused') {
      const w = waiting.get(msg.request);
      waiting.delete(msg.request);
      if (w) (msg.kind === 'tag_created' ? w.resolve(msg.tag) : w.reject(new Error(msg.message)));
    } else if (msg.kind === 'undo') { editor.undo(); refreshButtons(); }
    else if (msg.kind === 'redo') { editor.redo(); refreshButtons(); }
  };
  model.on('msg:custom', onMessage);
  model.on('change:image', showImage);
  model.on('change:suggestions', () => { editor.setSuggestions(model.get('suggestions'), 'always'); refreshButtons(); });
  model.on('change:tags', () => editor.setTags(model.get('tags')));
  model.on('change:position', showPosition);
  model.on('change:status', showStatus);
  showImage();
  showStatus();
  return () => { model.off('msg:custom', onMessage); editor.destroy(); };
}

export default { render };
