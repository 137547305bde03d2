// The portal's only way to the server: Azure's public Training and Prediction REST APIs, called as SDK 3.1.1 calls
// them (same paths, same query names, the key in the Training-Key / Prediction-Key header), plus the few cvlab-only
// /cvlab/portal routes. Keys live in sessionStorage (this browser tab only) and never in a URL.

export const TRAINING = '/customvision/v3.4-preview/training';
export const PREDICTION = '/customvision/v3.1/prediction';
export const PORTAL = '/cvlab/portal';

const TRAINING_KEY = 'cvlab.portal.trainingKey';
const PREDICTION_KEY = 'cvlab.portal.predictionKey';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const session = {
  get trainingKey() { return sessionStorage.getItem(TRAINING_KEY) || ''; },
  get predictionKey() { return sessionStorage.getItem(PREDICTION_KEY) || ''; },
  save(trainingKey, predictionKey) {
    sessionStorage.setItem(TRAINING_KEY, trainingKey);
    if (predictionKey) sessionStorage.setItem(PREDICTION_KEY, predictionKey);
  },
  clear() { sessionStorage.removeItem(TRAINING_KEY); sessionStorage.removeItem(PREDICTION_KEY); },
};

const refusedListeners = new Set();
/** `fn(error)` runs when the server refuses the key (401): the portal then goes back to sign-in. */
export function onKeyRefused(fn) { refusedListeners.add(fn); return () => refusedListeners.delete(fn); }

// Azure's S0 and F0 tiers both allow 10 "other" training calls per second; the portal paces itself below that, so
// a learner clicking fast never sees a 429, and retries one after Retry-After if it still gets one.
const PACE = { perSecond: 9, tokens: 9, stamp: performance.now() };
function pace() {
  const now = performance.now();
  PACE.tokens = Math.min(PACE.perSecond, PACE.tokens + ((now - PACE.stamp) / 1000) * PACE.perSecond);
  PACE.stamp = now;
  if (PACE.tokens >= 1) { PACE.tokens -= 1; return Promise.resolve(); }
  const wait = ((1 - PACE.tokens) / PACE.perSecond) * 1000;
  PACE.tokens -= 1;
  return new Promise((resolve) => setTimeout(resolve, wait));
}

export function query(params = {}) {
  const parts = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    const value = Array.isArray(v) ? v.join(',') : String(v);
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(value)}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

async function errorOf(res) {
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  const code = (data && (data.code || (data.error && data.error.code))) || String(res.status);
  const message = (data && (data.message || (data.error && data.error.message))) || `HTTP ${res.status} ${res.statusText}`;
  return new ApiError(res.status, code, message);
}

function refused(err) {
  refusedListeners.forEach((fn) => fn(err));
  return err;
}

/** One REST call. `key` is "training" or "prediction"; `json` is a JSON body, `body` any other body. */
export async function call(method, url, { key = 'training', json, body, signal, keyValue, retries = 2 } = {}) {
  const headers = { Accept: 'application/json' };
  const value = keyValue ?? (key === 'prediction' ? session.predictionKey : session.trainingKey);
  headers[key === 'prediction' ? 'Prediction-Key' : 'Training-Key'] = value;
  let payload = body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json; charset=utf-8';
    payload = JSON.stringify(json);
  }
  if (url.startsWith(TRAINING)) await pace();
  let res;
  try {
    res = await fetch(url, { method, headers, body: payload, signal, credentials: 'omit', cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'NetworkError', 'The cvlab server does not answer. Is `cvlab serve` still running?');
  }
  if (res.status === 429 && retries > 0) {
    const wait = Number(res.headers.get('Retry-After') || 1);
    await new Promise((r) => setTimeout(r, wait * 1000));
    return call(method, url, { key, json, body, signal, keyValue, retries: retries - 1 });
  }
  if (res.status === 401) {
    const err = await errorOf(res);
    err.code = 'Unauthorized';
    throw keyValue === undefined ? refused(err) : err;
  }
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204 || res.status === 202) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

const T = (path) => TRAINING + path;
const P = (path) => PORTAL + path;
const id = encodeURIComponent;

/** Training API, one function per SDK method (same names, camelCased). */
export const training = {
  getDomains: () => call('GET', T('/domains')),
  getProjects: () => call('GET', T('/projects')),
  getProject: (p) => call('GET', T(`/projects/${id(p)}`)),
  createProject: ({ name, description, domainId, classificationType, targetExportPlatforms }) =>
    call('POST', T(`/projects${query({ name, description, domainId, classificationType, targetExportPlatforms })}`)),
  updateProject: (p, body) => call('PATCH', T(`/projects/${id(p)}`), { json: body }),
  deleteProject: (p) => call('DELETE', T(`/projects/${id(p)}`)),

  getTags: (p) => call('GET', T(`/projects/${id(p)}/tags`)),
  createTag: (p, name, type) => call('POST', T(`/projects/${id(p)}/tags${query({ name, type })}`)),
  deleteTag: (p, tag) => call('DELETE', T(`/projects/${id(p)}/tags/${id(tag)}`)),

  getImages: (p, { taggingStatus, tagIds, orderBy, take = 50, skip = 0, iterationId } = {}) =>
    call('GET', T(`/projects/${id(p)}/images${query({ iterationId, tagIds, taggingStatus, orderBy, take, skip })}`)),
  getImageCount: (p, { taggingStatus, tagIds } = {}) =>
    call('GET', T(`/projects/${id(p)}/images/count${query({ taggingStatus, tagIds })}`)),
  getImagesByIds: (p, imageIds) => call('GET', T(`/projects/${id(p)}/images/id${query({ imageIds })}`)),
  deleteImages: (p, imageIds) => call('DELETE', T(`/projects/${id(p)}/images${query({ imageIds })}`)),
  createImageTags: (p, pairs) => call('POST', T(`/projects/${id(p)}/images/tags`),
    { json: { tags: pairs.map(([imageId, tagId]) => ({ imageId, tagId })) } }),
  deleteImageTags: (p, imageIds, tagIds) =>
    call('DELETE', T(`/projects/${id(p)}/images/tags${query({ imageIds, tagIds })}`)),
  createImageRegions: (p, regions) => call('POST', T(`/projects/${id(p)}/images/regions`), { json: { regions } }),
  deleteImageRegions: (p, regionIds) =>
    call('DELETE', T(`/projects/${id(p)}/images/regions${query({ regionIds })}`)),
  getImageRegionProposals: (p, image) => call('POST', T(`/projects/${id(p)}/images/${id(image)}/regionproposals`)),

  trainProject: (p, { trainingType, reservedBudgetInHours = 0, forceTrain = false, notificationEmailAddress,
    selectedTags } = {}) => call('POST', T(`/projects/${id(p)}/train${query({ trainingType, reservedBudgetInHours,
    forceTrain, notificationEmailAddress })}`), selectedTags ? { json: { selectedTags } } : {}),
  getIterations: (p) => call('GET', T(`/projects/${id(p)}/iterations`)),
  getIteration: (p, it) => call('GET', T(`/projects/${id(p)}/iterations/${id(it)}`)),
  deleteIteration: (p, it) => call('DELETE', T(`/projects/${id(p)}/iterations/${id(it)}`)),
  getIterationPerformance: (p, it, threshold, overlapThreshold) =>
    call('GET', T(`/projects/${id(p)}/iterations/${id(it)}/performance${query({ threshold, overlapThreshold })}`)),
  publishIteration: (p, it, publishName, predictionId) =>
    call('POST', T(`/projects/${id(p)}/iterations/${id(it)}/publish${query({ publishName, predictionId })}`)),
  unpublishIteration: (p, it) => call('DELETE', T(`/projects/${id(p)}/iterations/${id(it)}/publish`)),
  exportIteration: (p, it, platform, flavor) =>
    call('POST', T(`/projects/${id(p)}/iterations/${id(it)}/export${query({ platform, flavor })}`)),
  getExports: (p, it) => call('GET', T(`/projects/${id(p)}/iterations/${id(it)}/export`)),

  quickTestImage: (p, file, iterationId) => call('POST', T(`/projects/${id(p)}/quicktest/image${query({ iterationId,
    store: true })}`), { body: formData([file]) }),
  quickTestImageUrl: (p, url, iterationId) =>
    call('POST', T(`/projects/${id(p)}/quicktest/url${query({ iterationId, store: true })}`), { json: { url } }),
  queryPredictions: (p, token) => call('POST', T(`/projects/${id(p)}/predictions/query`), { json: token }),
  deletePrediction: (p, ids) => call('DELETE', T(`/projects/${id(p)}/predictions${query({ ids })}`)),
  createImagesFromPredictions: (p, images) =>
    call('POST', T(`/projects/${id(p)}/images/predictions`), { json: { images } }),

  querySuggestedImages: (p, iterationId, token) =>
    call('POST', T(`/projects/${id(p)}/images/suggested${query({ iterationId })}`), { json: token }),
  querySuggestedImageCount: (p, iterationId, tagIds, threshold) =>
    call('POST', T(`/projects/${id(p)}/images/suggested/count${query({ iterationId })}`), { json: { tagIds, threshold } }),
};

/** cvlab-only routes (what Azure's portal takes from outside the public APIs). */
export const portal = {
  session: (keyValue) => call('GET', P('/session'), { keyValue }),
  resources: (keyValue) => call('GET', P('/resources'), { keyValue }),
  outbox: () => call('GET', P('/outbox')),
  notify: (p, it, address) =>
    call('POST', P(`/projects/${id(p)}/iterations/${id(it)}/notification${query({ address })}`)),
  mistakes: (p, it, threshold, overlapThreshold) =>
    call('GET', P(`/projects/${id(p)}/iterations/${id(it)}/mistakes${query({ threshold, overlapThreshold })}`)),
  extras: (p, it, threshold, overlapThreshold, split) =>
    call('GET', P(`/projects/${id(p)}/iterations/${id(it)}/extras${query({ threshold, overlapThreshold, split })}`)),
};

/** The Prediction API URLs and calls, as the Prediction URL dialog shows them (Azure's v3.0 spelling). */
export function predictionUrls(base, projectId, publishName, projectType) {
  const action = projectType === 'ObjectDetection' ? 'detect' : 'classify';
  const root = `${base}/customvision/v3.0/Prediction/${projectId}/${action}/iterations/${encodeURIComponent(publishName)}`;
  return { url: `${root}/url`, image: `${root}/image` };
}

export const prediction = {
  classifyImage: (p, name, file) => call('POST', `${PREDICTION}/${id(p)}/classify/iterations/${id(name)}/image`,
    { key: 'prediction', body: formData([file]) }),
};

export function formData(files) {
  const form = new FormData();
  for (const f of files) form.append('imageData', f, f.name || 'image');
  return form;
}

/** Upload training images with create_images_from_data (multipart imageData parts), reporting bytes sent. */
export function uploadImages(projectId, files, tagIds, onProgress, retries = 5) {
  return new Promise((resolve, reject) => {
    pace().then(() => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', T(`/projects/${id(projectId)}/images${query({ tagIds })}`));
      xhr.setRequestHeader('Training-Key', session.trainingKey);
      xhr.setRequestHeader('Accept', 'application/json');
      xhr.upload.onprogress = (e) => { if (e.lengthComputable && onProgress) onProgress(e.loaded, e.total); };
      xhr.onerror = () => reject(new ApiError(0, 'NetworkError', 'The upload was cut off: is `cvlab serve` still running?'));
      xhr.onload = () => {
        let data = null;
        try { data = JSON.parse(xhr.responseText || 'null'); } catch (_) { data = null; }
        if (xhr.status === 429 && retries > 0) {  // the rate limit counts uploads too: wait as told, send again
          const wait = Number(xhr.getResponseHeader('Retry-After') || 1);
          setTimeout(() => uploadImages(projectId, files, tagIds, onProgress, retries - 1).then(resolve, reject),
            wait * 1000);
          return;
        }
        if (xhr.status === 401) { reject(refused(new ApiError(401, 'Unauthorized', 'Access denied'))); return; }
        if (xhr.status === 200 || xhr.status === 207) { resolve(data); return; }
        reject(new ApiError(xhr.status, (data && data.code) || String(xhr.status), (data && data.message) || xhr.statusText));
      };
      xhr.send(formData(files));
    });
  });
}

let domainsPromise = null;
/** Azure's domain catalogue (get_domains), fetched once per page load. */
export function domains() {
  if (!domainsPromise) domainsPromise = training.getDomains().catch((e) => { domainsPromise = null; throw e; });
  return domainsPromise;
}
