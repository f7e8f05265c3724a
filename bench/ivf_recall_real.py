"""IVF recall against exact search on real embeddings (the scale benchmark's vectors are synthetic).

    python bench/ivf_recall_real.py --data-dir /tmp/scifact-data [--queries ../shared/eval/scifact/queries.jsonl]

Forces the index's real chunk vectors through the IVF path the store uses above
RAG_ANN_THRESHOLD and prints recall@10 and @200 (the funnel's dense depth) per nprobe.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.embed import MiniLMEmbedder  # noqa: E402
from rag.store import LocalStore  # noqa: E402
from rag.store.dense import DenseIndex  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--queries", type=Path,
                    default=Path(__file__).resolve().parents[2] / "shared/eval/scifact/queries.jsonl")
    ap.add_argument("--nprobe", type=int, nargs="+", default=[8, 32, 64])
    args = ap.parse_args()
    rows = LocalStore(args.data_dir).conn.execute("SELECT vid, embedding FROM chunks ORDER BY vid").fetchall()
    vids = np.array([r[0] for r in rows], dtype=np.int64)
    vectors = np.vstack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
    texts = [json.loads(line)["text"] for line in args.queries.open(encoding="utf-8") if line.strip()]
    Q = MiniLMEmbedder().embed(texts)
    exact = DenseIndex.build(vectors, vids, vectors.shape[1], 0)
    truth = [exact.search(q, 200)[0] for q in Q]
    for nprobe in args.nprobe:
        ivf = DenseIndex.build(vectors, vids, vectors.shape[1], 1, nprobe=nprobe)
        found = [ivf.search(q, 200)[0] for q in Q]
        r10 = np.mean([len(set(e[:10]) & set(a[:10])) / 10 for e, a in zip(truth, found)])
        r200 = np.mean([len(set(e) & set(a)) / max(1, len(e)) for e, a in zip(truth, found)])
        print(f"{len(vids)} vectors, {len(Q)} queries, nprobe={nprobe}: recall@10 {r10:.3f} recall@200 {r200:.3f}")


if __name__ == "__main__":
    main()
