"""Dense vectors in FAISS: normalised inner product, id-mapped by chunk vid so deletes work."""
from __future__ import annotations

from pathlib import Path

import numpy as np


class DenseIndex:
    def __init__(self, index):
        self.index = index

    @classmethod
    def empty(cls, dim: int) -> "DenseIndex":
        import faiss

        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @classmethod
    def build(cls, vectors: np.ndarray, vids: np.ndarray, dim: int) -> "DenseIndex":
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

        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

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
    def load(cls, path: Path) -> "DenseIndex":
        import faiss

        return cls(faiss.read_index(str(path)))
