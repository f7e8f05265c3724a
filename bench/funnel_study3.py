"""Third funnel study on SciFact TRAIN: neighbour-aware fusion and a learned L2 over stage scores.

    python bench/funnel_study3.py --data-dir /tmp/scifact-data [--dataset ../shared/eval/scifact]

Starts from the shipped funnel (min-max fusion of BM25 with the dense PRF pass: prf_k=2,
alpha=0.75, w_prf=1.75) and tries, without re-embedding:

1. Neighbour context: a chunk's fused score plus beta * the best fused score among its
   neighbours - (a) chunks of the same document, (b) only the adjacent chunks (ordinal +-1),
   the variant that makes sense for long PDFs.
2. A learned linear combination of per-stage features (pointwise logistic regression on
   chunk-level labels = the chunk's document is relevant), chosen by 5-fold cross-validation
   on train.

Choices are made on train; test is looked at once, for the chosen settings only.

Result (2026-11-21): nothing here beats the shipped funnel. Train: shipped 0.7440; best
neighbour setting +0.0003 (adjacent, beta 0.05), every larger beta lower; learned
combinations 0.724-0.742 in 5-fold CV. Test: shipped 0.738, neighbour 0.736, learned 0.735.
Also tried (scratch, same conclusion): z-score fusion, list depth 50/100, BM25 k1/b re-tuned
under PRF, a title-only BM25 field, title and whole-document dense lists, maxsim blends over
the PRF ranking (best +0.0014 on train), 128-token chunks (train 0.7375 vs 0.7440). What
moved test past 0.74 was a stronger dense model: rag/tune.py.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.funnel_prf import Corpus, Split, fuse_scores, study_parser  # noqa: E402
from rag.embed import MiniLMEmbedder  # noqa: E402
from rag.eval import doc_ranking, ndcg_at  # noqa: E402
from rag.retrieve import minmax  # noqa: E402
from rag.store import LocalStore  # noqa: E402

PRF_K, PRF_ALPHA, W_PRF = 2, 0.75, 1.75


class Neighbours:
    def __init__(self, store: LocalStore, corpus: Corpus):
        rows = store.conn.execute("SELECT vid, doc_id, ordinal FROM chunks").fetchall()
        self.doc = {v: d for v, d, _ in rows if v in corpus.row_of}
        self.key = {(d, o): v for v, d, o in rows if v in corpus.row_of}
        self.ordinal = {v: o for v, _, o in rows}

    def adjacent(self, v: int) -> list[int]:
        d, o = self.doc[v], self.ordinal[v]
        return [self.key[(d, o + s)] for s in (-1, 1) if (d, o + s) in self.key]


def shipped(split: Split) -> tuple[list, list[tuple[np.ndarray, np.ndarray]]]:
    d1 = split.prf_dense(split.feedback("fused", PRF_K), PRF_ALPHA)
    return d1, [fuse_scores([d, b], [W_PRF, 1]) for d, b in zip(d1, split.bm25)]


def context(score: dict[int, float], nb: Neighbours, mode: str) -> dict[int, float]:
    """Per chunk, the best fused score among its neighbours: the other chunks of its document
    ("doc") or only the adjacent ones ("adj"); 0 when it has none among the candidates."""
    if mode == "adj":
        return {v: max((score.get(n, 0.0) for n in nb.adjacent(v)), default=0.0) for v in score}
    top2: dict[str, list[float]] = {}
    for v, s in sorted(score.items(), key=lambda x: -x[1]):
        if len(top2.setdefault(nb.doc[v], [])) < 2:
            top2[nb.doc[v]].append(s)
    out = {}
    for v, s in score.items():
        t = top2[nb.doc[v]]
        out[v] = 0.0 if len(t) < 2 else (t[1] if t[0] == s else t[0])
    return out


def neighbour_rank(fused: tuple[np.ndarray, np.ndarray], nb: Neighbours, beta: float, mode: str) -> list[int]:
    ids, sc = fused
    score = dict(zip(ids.tolist(), sc.tolist()))
    ctx = context(score, nb, mode)
    new = {v: s + beta * ctx[v] for v, s in score.items()}
    return sorted(new, key=lambda v: -new[v])


FEATURES = ["prf", "bm25", "dense", "fused", "rrf_prf", "rrf_bm25", "in_both", "ctx_doc", "ctx_adj"]


def features(split: Split, d1, fused, nb: Neighbours, i: int) -> tuple[np.ndarray, np.ndarray]:
    ids, fsc = fused[i]
    n = len(ids)
    pos = {v: j for j, v in enumerate(ids.tolist())}
    X = np.zeros((n, len(FEATURES)))
    for col, (lids, lsc) in ((0, d1[i]), (1, split.bm25[i]), (2, split.dense0[i])):
        norm = minmax(np.asarray(lsc, dtype=np.float64))
        for r, (v, s) in enumerate(zip(lids.tolist(), norm.tolist())):
            if v in pos:
                X[pos[v], col] = s
                if col < 2:
                    X[pos[v], 4 + col] = 60.0 / (60 + r + 1)
    X[:, 3] = fsc
    X[:, 6] = (X[:, 0] > 0) & (X[:, 1] > 0)
    score = dict(zip(ids.tolist(), fsc.tolist()))
    for col, mode in ((7, "doc"), (8, "adj")):
        ctx = context(score, nb, mode)
        X[[pos[v] for v in ctx], col] = list(ctx.values())
    return ids, X


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float, steps: int = 300) -> np.ndarray:
    mu, sd = X.mean(0), X.std(0) + 1e-9
    Z = np.hstack([(X - mu) / sd, np.ones((len(X), 1))])
    w = np.zeros(Z.shape[1])
    pos_w = (len(y) - y.sum()) / max(1, y.sum())  # balance the rare positives
    sw = np.where(y > 0, pos_w, 1.0)
    for _ in range(steps):  # Newton steps: the L2-regularised logistic loss is convex
        p = 1 / (1 + np.exp(-Z @ w))
        g = Z.T @ (sw * (p - y)) / sw.sum() + l2 * np.r_[w[:-1], 0]
        h = (Z * (sw * p * (1 - p))[:, None]).T @ Z / sw.sum() + l2 * np.diag(np.r_[np.ones(len(w) - 1), 0])
        w -= np.linalg.solve(h + 1e-9 * np.eye(len(w)), g)
        if np.abs(g).max() < 1e-7:
            break
    w_raw = w[:-1] / sd
    return np.r_[w_raw, w[-1] - (mu / sd) @ w[:-1]]


def main() -> None:
    ap = study_parser()
    ap.add_argument("--no-test", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    store = LocalStore(args.data_dir)
    corpus = Corpus(store)
    nb = Neighbours(store, corpus)
    emb = MiniLMEmbedder()
    train = Split(corpus, emb, args.dataset, "train")
    d1, fused = shipped(train)
    print(f"{len(train.qids)} train queries; ready in {time.perf_counter() - t0:.0f}s")
    base_q = train.per_query([f[0].tolist() for f in fused])
    print(f"shipped funnel (fused + PRF), train nDCG@10 {base_q.mean():.4f}")

    print("-- 1. neighbour context")
    results: dict[tuple[str, float], float] = {}
    for mode in ("doc", "adj"):
        for beta in (0.05, 0.1, 0.2, 0.3, 0.5, 0.75):
            v = train.per_query([neighbour_rank(f, nb, beta, mode) for f in fused]).mean()
            results[(mode, beta)] = float(v)
            print(f"  {mode} beta={beta}: {v:.4f} ({v - base_q.mean():+.4f})", flush=True)

    print("-- 2. learned linear combination, 5-fold CV on train")
    rows = [features(train, d1, fused, nb, i) for i in range(len(train.qids))]
    src = corpus.source_of
    labels = [np.array([1.0 if train.qrels[q].get(src.get(v), 0) > 0 else 0.0 for v in ids.tolist()])
              for q, (ids, _) in zip(train.qids, rows)]
    folds = np.arange(len(rows)) % 5
    subsets = {"stages": [0, 1, 2], "stages+fused": [0, 1, 2, 3], "stages+rrf": [0, 1, 2, 4, 5, 6],
               "stages+ctx": [0, 1, 2, 7, 8], "all": list(range(len(FEATURES)))}
    cv: dict[tuple[str, float], float] = {}
    for name, cols in subsets.items():
        for l2 in (1e-4, 1e-2):
            per = np.zeros(len(rows))
            for f in range(5):
                tr = [i for i in range(len(rows)) if folds[i] != f]
                w = fit_logistic(np.vstack([rows[i][1][:, cols] for i in tr]), np.concatenate([labels[i] for i in tr]), l2)
                for i in np.where(folds == f)[0]:
                    ids, X = rows[i]
                    s = X[:, cols] @ w[:-1]
                    order = ids[np.argsort(-s, kind="stable")].tolist()
                    per[i] = ndcg_at(doc_ranking(order, src), train.qrels[train.qids[i]])
            cv[(name, l2)] = float(per.mean())
            print(f"  {name:<14} l2={l2}: CV nDCG@10 {per.mean():.4f} ({per.mean() - base_q.mean():+.4f})", flush=True)

    best_nb = max(results, key=results.get)
    best_lr = max(cv, key=cv.get)
    print(f"\nbest neighbour: {best_nb} {results[best_nb]:.4f}; best learned: {best_lr} {cv[best_lr]:.4f}")
    if args.no_test:
        return
    test = Split(corpus, emb, args.dataset, "test")
    td1, tfused = shipped(test)
    print(f"\nTEST ({len(test.qids)} queries)")
    print(f"{'':<34}" + "".join(f"{m:>12}" for m in ["ndcg@10", "recall@10", "recall@100", "mrr@10"]))

    def show(label, rankings):
        print(f"{label:<34}" + "".join(f"{v:>12.4f}" for v in test.report(rankings).values()))

    show("shipped (fused + PRF)", [f[0].tolist() for f in tfused])
    show(f"neighbour {best_nb[0]} beta={best_nb[1]}", [neighbour_rank(f, nb, best_nb[1], best_nb[0]) for f in tfused])
    cols = subsets[best_lr[0]]
    w = fit_logistic(np.vstack([r[1][:, cols] for r in rows]), np.concatenate(labels), best_lr[1])
    print("  learned weights:", dict(zip([FEATURES[c] for c in cols], np.round(w[:-1], 3).tolist())))
    ranks = []
    for i in range(len(test.qids)):
        ids, X = features(test, td1, tfused, nb, i)
        ranks.append(ids[np.argsort(-(X[:, cols] @ w[:-1]), kind="stable")].tolist())
    show(f"learned {best_lr[0]} l2={best_lr[1]}", ranks)


if __name__ == "__main__":
    main()
