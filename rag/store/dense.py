"""Dense vectors in FAISS: normalised inner product, id-mapped by chunk vid so deletes work.

Exact search (IndexIDMap2 over IndexFlatIP) up to `ann_threshold` vectors; above it an IVF
index (inverted lists over k-means cells, searched `nprobe` cells deep). IVF rather than HNSW
because it supports removing ids, which deletes and re-ingests need.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

DEFAULT_NPROBE = 32


class DenseIndex:
    def __init__(self, index, nprobe: int = DEFAULT_NPROBE):
        self.index = index
        self.nprobe = nprobe
        self._set_nprobe()

    def _set_nprobe(self) -> None:
        import faiss

        ivf = faiss.try_extract_index_ivf(self.index)
        if ivf is not None:
            ivf.nprobe = self.nprobe

    @property
    def kind(self) -> str:
        import faiss

        return "ivf" if faiss.try_extract_index_ivf(self.index) is not None else "flat"

    @classmethod
    def empty(cls, dim: int) -> "DenseIndex":
        import faiss

        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @classmethod
    def build(cls, vectors: np.ndarray, vids: np.ndarray, dim: int, ann_threshold: int = 0,
              nprobe: int = DEFAULT_NPROBE) -> "DenseIndex":
        """Exact index, or IVF when there are more than `ann_threshold` (> 0) vectors."""
        import faiss

        if ann_threshold and len(vids) > ann_threshold:
            # ~4*sqrt(n) cells, with at least 39 training points per cell as FAISS advises.
            nlist = max(1, min(int(4 * math.sqrt(len(vids))), len(vids) // 39))
            index = faiss.index_factory(dim, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(0)
            sample = vectors[rng.choice(len(vectors), size=min(len(vectors), nlist * 40), replace=False)]
            index.train(np.ascontiguousarray(sample, dtype=np.float32))
            idx = cls(index, nprobe)
        else:
            idx = cls.empty(dim)
        idx.add(vectors, vids)
        return idx

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def ids(self) -> np.ndarray:
        import faiss

        ivf = faiss.try_extract_index_ivf(self.index)
        if ivf is None:
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        invlists = ivf.invlists
        parts = [faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
                 for i in range(ivf.nlist) if invlists.list_size(i)]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)

    def add(self, vectors: np.ndarray, vids: np.ndarray) -> None:
        if len(vids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                                    np.asarray(vids, dtype=np.int64))

    def remove(self, vids: np.ndarray) -> None:
        if len(vids):
            self.index.remove_ids(np.asarray(vids, dtype=np.int64))

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (vids, scores) for one normalised query vector."""
        if len(self) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        scores, ids = self.index.search(q, min(k, len(self)))
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, nprobe: int = DEFAULT_NPROBE) -> "DenseIndex":
        import faiss

        return cls(faiss.read_index(str(path)), nprobe)
