"""Offline replay of the classification learning curve of ``benchmarks/active_learning.py``; prints JSON.

    .venv/bin/python benchmarks/active_learning_replay.py [--data-seeds 1 2] [--seeds 0..19]
        [--orders random margin spread ...] [--random-draws 5] [--cache DIR] [--check]

Quick classification is a logistic-regression head on frozen, cached embeddings (``cvlab.training``,
``cvlab.nets.classifier.fit_linear_head``), so the whole experiment replays from the embeddings of the generated
images: the same split (``cvlab.experiments.active_learning._split``), the same head (same seed), the same held-out micro F1 at 0.5
(``cvlab.metrics.classification_prf``: the Negative tag takes part in the argmax but scores nothing).  A curve
takes about a second, so orderings are compared over 20+ split seeds instead of 3.  ``--check`` prints the
round-0 F1 of data seed 0, split seed 0: 0.5574, as the real ``learning_curve`` (whose curves for spread, plain
margin and random on split seeds 0-2 the replay reproduces exactly; 0.530 is their round-0 mean).

Choose on development data (data seeds 1, 2); data seed 0 is the benchmark's test data.  Random sampling is
averaged over ``--random-draws`` draws per split seed (its expected curve); ``gain`` = mean over split seeds of
(order - random) over rounds 1.., with its standard error and the number of split seeds the order wins.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cvlab import active, datasets  # noqa: E402
from cvlab.experiments import active_learning  # noqa: E402
from cvlab.metrics import classification_prf  # noqa: E402
from cvlab.nets.classifier import fit_linear_head  # noqa: E402

DATASET, START, POOL, TEST, ROUNDS, PER_ROUND = "parts", 5, 120, 120, 3, 10


def load(data_seed: int, cache: Path):
    """(records, embeddings [N, 1280], class index per record) of the benchmark's generated images."""
    from cvlab.domains import get_domain
    from cvlab.datasets.importing import resolve_domain
    from cvlab.nets.backbones import spec

    meta = datasets.info(DATASET)
    count = TEST + POOL + 2 * START * len(meta.tags)  # as learning_curve
    records = datasets.generate(DATASET, count, seed=data_seed)
    bb = spec(get_domain(resolve_domain(None, meta.project_type)).backbone)
    path = cache / f"{DATASET}-{data_seed}-{count}-{bb.name}-{bb.input_size}.npy"
    if path.exists():
        x = np.load(path)
    else:
        from cvlab.embeddings import embed_pil

        x = embed_pil([r.load().convert("RGB") for r in records], bb.name, bb.input_size)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, x)
    y = np.array([meta.tags.index(r.tags[0]) for r in records])
    return records, x, y, meta


def f1(probs: np.ndarray, y: np.ndarray, tags) -> float:
    truth = np.zeros(probs.shape, bool)
    truth[np.arange(len(y)), y] = True
    regular = np.array([t != datasets.NEGATIVE for t in tags])
    return float(classification_prf(truth, probs, 0.5, "Multiclass", regular)[1].f1)


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def curve(order, x, y, records, meta, seed: int, draw: int = 0) -> tuple[list[float], list[int]]:
    """F1 per round and the class of every picked image; ``order(probs, cand, known, k)`` -> candidate indices."""
    initial, test, pool = active_learning._split(records, meta.tags, START, TEST, POOL, seed)
    labelled, left = list(initial), sorted(pool)
    scores, picks = [], []
    for r in range(ROUNDS + 1):
        w, b = fit_linear_head(x[labelled], y[labelled], False, len(meta.tags), seed)
        head = lambda idx: softmax(x[idx].astype(np.float64) @ w.T.astype(np.float64) + b)  # noqa: E731
        scores.append(f1(head(test), y[test], meta.tags))
        if r == ROUNDS:
            break
        if order is None:  # random, as learning_curve (draw 0 uses its generator)
            rng = np.random.default_rng([seed, r + 1] + ([draw] if draw else []))
            chosen = [left[i] for i in rng.choice(len(left), size=PER_ROUND, replace=False)]
        else:
            chosen = [left[i] for i in order(head(left), x[left], x[labelled], PER_ROUND)[:PER_ROUND]]
        picks += [int(y[i]) for i in chosen]
        labelled += chosen
        left = [i for i in left if i not in set(chosen)]
    return scores, picks


# ------------------------------------------------------------------------------------------------ orderings
def margin(probs):
    top = np.sort(probs, 1)[:, ::-1]
    return 1.0 - (top[:, 0] - top[:, 1])


def plain(probs, cand, known, k):
    return active.spread_order(margin(probs), cand, known, power=0)


def spread(power):
    return lambda probs, cand, known, k: active.spread_order(margin(probs), cand, known, power=power, head=k)


def density(beta):
    """Information density (Settles & Craven 2008): margin x (mean cosine similarity to the pool) ** beta."""
    def order(probs, cand, known, k):
        u, _ = active.centred_unit(cand, known)
        sim = (u @ u.T).mean(1)
        dens = (sim - sim.min()) / max(sim.max() - sim.min(), 1e-12)
        return list(np.argsort(-margin(probs) * (dens + 1e-3) ** beta, kind="stable"))
    return order


def _kmeans(u, k, seed=0):
    from sklearn.cluster import KMeans

    return KMeans(k, n_init=4, random_state=seed).fit_predict(u)


def cluster(pick):
    """k-means of the pool into k clusters, one image per cluster: the most uncertain or the most typical."""
    def order(probs, cand, known, k):
        u, _ = active.centred_unit(cand, known)
        lab = _kmeans(u, k)
        mu = margin(probs)
        out = []
        for c in range(k):
            m = np.flatnonzero(lab == c)
            if pick == "uncertain":
                out.append(m[np.argmax(mu[m])])
            else:  # typical: highest mean similarity within its cluster (TypiClust's typicality)
                out.append(m[np.argmax((u[m] @ u[m].T).mean(1))])
        return sorted(out, key=lambda j: -mu[j])
    return order


def typiclust(probs, cand, known, k):
    """TypiClust (Hacohen et al. 2022): k-means of pool + labelled into |L| + k clusters; in each of the
    largest clusters with no labelled image, the most typical image."""
    u, v = active.centred_unit(cand, known)
    both = np.vstack([u, v])
    lab = _kmeans(both, len(known) + k)
    covered = set(lab[len(u):].tolist())
    sizes = np.bincount(lab[:len(u)], minlength=lab.max() + 1)
    out = []
    for c in sorted(set(lab[:len(u)].tolist()) - covered, key=lambda c: -sizes[c]):
        m = np.flatnonzero(lab[:len(u)] == c)
        out.append(m[np.argmax((u[m] @ u[m].T).mean(1))])
    mu = margin(probs)
    return out + [int(j) for j in np.argsort(-mu, kind="stable") if j not in set(out)]


def badge(probs, cand, known, k):
    """BADGE (Ash et al. 2020): k-means++ seeding on the last layer's gradient embeddings (p - onehot(argmax)) x."""
    g = probs.copy()
    g[np.arange(len(g)), probs.argmax(1)] -= 1.0
    u, _ = active.centred_unit(cand, known)
    emb = (g[:, :, None] * u[:, None, :]).reshape(len(u), -1)
    first = int(np.argmax((emb ** 2).sum(1)))
    out, d = [first], ((emb - emb[first]) ** 2).sum(1)
    rng = np.random.default_rng(0)
    while len(out) < k:
        j = int(rng.choice(len(d), p=d / d.sum())) if d.sum() > 0 else int(np.argmax(d))
        out.append(j)
        d = np.minimum(d, ((emb - emb[j]) ** 2).sum(1))
    return out


def typical_spread(probs, cand, known, k):
    """``spread`` with the margin weighted by typicality (1 / mean cosine distance to the 20 nearest images)."""
    u, _ = active.centred_unit(cand, known)
    near = np.sort(1.0 - u @ u.T, 1)[:, 1:min(20, len(u) - 1) + 1].mean(1)
    typical = 1.0 / (near + 1e-9)
    return active.spread_order(margin(probs) * typical / typical.max(), cand, known, power=4.0, head=k)


def coreset(probs, cand, known, k):
    """Pure diversity: the farthest image from the labelled and picked ones, uncertainty ignored."""
    return active.spread_order(np.ones(len(cand)), cand, known, power=1.0, head=k)


def cover_uncertain(probs, cand, known, k):
    """TypiClust's uncovered clusters, the most uncertain image of each."""
    u, v = active.centred_unit(cand, known)
    lab = _kmeans(np.vstack([u, v]), len(known) + k)
    covered, mu = set(lab[len(u):].tolist()), margin(probs)
    sizes = np.bincount(lab[:len(u)], minlength=lab.max() + 1)
    out = []
    for c in sorted(set(lab[:len(u)].tolist()) - covered, key=lambda c: -sizes[c]):
        m = np.flatnonzero(lab[:len(u)] == c)
        out.append(m[np.argmax(mu[m])])
    return out + [int(j) for j in np.argsort(-mu, kind="stable") if j not in set(out)]


def balanced(probs, cand, known, k):
    """Round-robin over predicted tags, each tag's most uncertain image first."""
    mu, pred = margin(probs), probs.argmax(1)
    queues = [list(np.flatnonzero(pred == c)[np.argsort(-mu[pred == c], kind="stable")]) for c in range(probs.shape[1])]
    out = []
    while len(out) < min(k, len(mu)):
        for q in sorted((q for q in queues if q), key=lambda q: -mu[q[0]]):
            if len(out) < k:
                out.append(q.pop(0))
    return out


def entropy(probs, cand, known, k):
    h = -(probs * np.log(np.clip(probs, 1e-12, 1))).sum(1)
    return list(np.argsort(-h, kind="stable"))


ORDERS = {"margin": plain, "spread": spread(4.0), "spread1": spread(1.0), "spread2": spread(2.0),
          "density1": density(1.0), "density2": density(2.0), "cluster-uncertain": cluster("uncertain"),
          "cluster-typical": cluster("typical"), "typiclust": typiclust, "badge": badge, "balanced": balanced,
          "entropy": entropy, "typical-spread": typical_spread, "coreset": coreset, "cover-uncertain": cover_uncertain}


def compare(names, data_seeds, seeds, draws: int) -> dict:
    out = {}
    for ds in data_seeds:
        records, x, y, meta = load(ds, CACHE)
        rand = np.array([[curve(None, x, y, records, meta, s, d)[0] for d in range(draws)] for s in seeds]).mean(1)
        res = {"random": {"mean": np.round(rand.mean(0), 3).tolist()}}
        for name in names:
            runs = [curve(ORDERS[name], x, y, records, meta, s) for s in seeds]
            f = np.array([r[0] for r in runs])
            gain = (f - rand)[:, 1:].mean(1)
            res[name] = {"mean": np.round(f.mean(0), 3).tolist(), "gain": round(float(gain.mean()), 4),
                         "se": round(float(gain.std(ddof=1) / np.sqrt(len(gain))), 4),
                         "wins": f"{int((gain > 0).sum())}/{len(gain)}",
                         "picked": np.bincount(sum((r[1] for r in runs), []), minlength=len(meta.tags)).tolist()}
        out[f"data seed {ds}"] = res
    return out


CACHE = Path("/tmp/cvlab-al-replay")


def main(argv=None) -> int:
    global CACHE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(20)))
    ap.add_argument("--orders", nargs="+", default=list(ORDERS), choices=list(ORDERS))
    ap.add_argument("--random-draws", type=int, default=5)
    ap.add_argument("--cache", default=str(CACHE), help="where the embeddings of the generated images are kept")
    ap.add_argument("--check", action="store_true", help="round-0 F1 of data seed 0, split seed 0 (real: 0.5574)")
    args = ap.parse_args(argv)
    CACHE = Path(args.cache)
    started = time.perf_counter()
    if args.check:
        records, x, y, meta = load(0, CACHE)
        result = {"round0_f1_data0_split0": round(curve(None, x, y, records, meta, 0)[0][0], 4)}
    else:
        result = compare(args.orders, args.data_seeds, args.seeds, args.random_draws)
    result["settings"] = {"dataset": DATASET, "start_per_tag": START, "pool": POOL, "test": TEST, "rounds": ROUNDS,
                          "per_round": PER_ROUND, "seeds": args.seeds, "random_draws": args.random_draws}
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
