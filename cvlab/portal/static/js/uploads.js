// Uploads run here, outside any screen, so the learner can leave the upload dialog (or the page section) and come
// back: the top bar shows how far they are. Each batch is one create_images_from_data call (multipart imageData).
import { training, uploadImages } from './api.js';
import { html, useEffect, useState } from './lib.js';

const BATCH_FILES = 16;
const BATCH_BYTES = 24 * 1024 * 1024;
const jobs = [];
const listeners = new Set();
let nextId = 1;

function changed() { listeners.forEach((fn) => fn([...jobs])); }

export function useUploads() {
  const [list, setList] = useState([...jobs]);
  useEffect(() => { listeners.add(setList); return () => listeners.delete(setList); }, []);
  return list;
}

export function jobFor(projectId) { return [...jobs].reverse().find((j) => j.projectId === projectId) || null; }

function batches(files) {
  const out = [];
  let batch = [];
  let bytes = 0;
  for (const f of files) {
    if (batch.length && (batch.length >= BATCH_FILES || bytes + f.size > BATCH_BYTES)) { out.push(batch); batch = []; bytes = 0; }
    batch.push(f);
    bytes += f.size;
  }
  if (batch.length) out.push(batch);
  return out;
}

/** The tag ids for the names typed in "My Tags" (new names become tags first, as the portal does). */
async function tagIdsFor(projectId, names) {
  if (!names.length) return [];
  const existing = await training.getTags(projectId);
  const ids = [];
  for (const name of names) {
    const found = existing.find((t) => t.name.toLowerCase() === name.toLowerCase());
    const tag = found || await training.createTag(projectId, name, name.toLowerCase() === 'negative' ? 'Negative' : undefined);
    ids.push(tag.id);
  }
  return ids;
}

/** Start uploading `files` to the project with the "My Tags" names; returns the job (watch it with useUploads). */
export function startUpload(projectId, files, tagNames, onDone) {
  const job = { id: nextId++, projectId, total: files.length, done: 0, bytesDone: 0,
    bytesTotal: files.reduce((s, f) => s + f.size, 0), status: 'uploading', ok: 0, duplicates: 0, failed: [],
    error: null, tagNames };
  jobs.push(job);
  changed();
  (async () => {
    try {
      const tagIds = await tagIdsFor(projectId, tagNames);
      for (const batch of batches(files)) {
        const before = job.bytesDone;
        const batchBytes = batch.reduce((s, f) => s + f.size, 0);
        const summary = await uploadImages(projectId, batch, tagIds, (loaded, total) => {
          job.bytesDone = before + Math.min(batchBytes, (loaded / (total || 1)) * batchBytes);
          changed();
        });
        (summary.images || []).forEach((r, i) => {
          if (r.status === 'OK') job.ok += 1;
          else if (r.status === 'OKDuplicate') job.duplicates += 1;
          else job.failed.push({ name: batch[i] ? batch[i].name : String(r.sourceUrl || ''), status: r.status });
        });
        job.done += batch.length;
        job.bytesDone = before + batchBytes;
        changed();
      }
      job.status = 'done';
    } catch (err) {
      job.status = 'failed';
      job.error = err;
    }
    changed();
    if (onDone) onDone(job);
  })();
  return job;
}

/** Top-bar progress of running uploads (the learner may have closed the dialog). */
export function UploadIndicator() {
  const list = useUploads().filter((j) => j.status === 'uploading');
  if (!list.length) return null;
  const done = list.reduce((s, j) => s + j.done, 0);
  const total = list.reduce((s, j) => s + j.total, 0);
  const bytes = list.reduce((s, j) => s + j.bytesDone, 0);
  const all = list.reduce((s, j) => s + j.bytesTotal, 0);
  return html`<div class="upload-indicator" role="status">
    <progress aria-label="Upload progress" value=${bytes} max=${all || 1}></progress>
    <span>Uploading ${done} of ${total} images…</span>
  </div>`;
}
