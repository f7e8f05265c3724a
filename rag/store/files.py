"""The local store's derived indexes: one folder per index version, FAISS + bm25s files.

    index/v<N>/     manifest.json, dense.faiss, sparse/ (bm25s arrays + JSON)
    index/CURRENT   a hint naming the live version (the catalog's meta is the truth)

A version's folder is built under a temporary name, fsynced and renamed into place before the
catalog commit that makes it live, so readers never see half of one.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from rag.store.dense import DenseIndex
from rag.store.rules import Snapshot, crash_point, now_iso
from rag.store.sparse import SparseIndex

INDEX_FORMAT = 1
KEEP_INDEX_VERSIONS = 2  # the live one and its predecessor (for readers mid-reload)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(Path(dirpath))


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class IndexFolders:
    """index/v<N> folders: write one atomically, load one, prune old ones."""

    def __init__(self, index_dir: Path, ann_threshold: int):
        self.index_dir = index_dir
        self.ann_threshold = ann_threshold
        index_dir.mkdir(parents=True, exist_ok=True)

    def folder(self, version: int) -> Path:
        return self.index_dir / f"v{version}"

    def complete(self, version: int) -> bool:
        return (self.folder(version) / "manifest.json").exists()

    def _dense(self, vids: np.ndarray, vectors: np.ndarray, base_version: int, dim: int) -> DenseIndex | None:
        """Start from the previous version's FAISS index when there is one (cheap update);
        else build from the vectors the catalog keeps."""
        dense = None
        base = self.folder(base_version) / "dense.faiss"
        if base_version and base.exists() and dim:
            dense = DenseIndex.load(base)
            dense.remove(np.setdiff1d(dense.ids(), vids))
            new = np.setdiff1d(vids, dense.ids())
            dense.add(vectors[np.searchsorted(vids, new)], new)
            if not np.array_equal(np.sort(dense.ids()), vids):
                dense = None  # the old index was not what the catalog says; rebuild from the truth
            elif dense.kind == "flat" and self.ann_threshold and len(vids) > self.ann_threshold:
                dense = None  # grew past the threshold: rebuild as an ANN index
        if dense is None and dim:
            dense = (DenseIndex.build(vectors, vids, dim, ann_threshold=self.ann_threshold)
                     if len(vids) else DenseIndex.empty(dim))
        return dense

    def write(self, version: int, vids: np.ndarray, vectors: np.ndarray, terms: list[list[str]],
              base_version: int, dim: int, embedder_id: str | None, chunker_version: str | None) -> None:
        """Build index/v<version> for these chunks, atomically."""
        if vectors.size and not dim:
            dim = vectors.shape[1]
        dense = self._dense(vids, vectors, base_version, dim)
        sparse = SparseIndex.build(terms, vids)
        tmp = self.index_dir / f".tmp-v{version}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        if dense is not None:
            dense.save(tmp / "dense.faiss")
        sparse.save(tmp / "sparse")
        manifest = {
            "index_format": INDEX_FORMAT, "index_version": version, "chunks": int(len(vids)),
            "embedder_id": embedder_id, "embedding_dim": dim or None, "chunker_version": chunker_version,
            "bm25": {"engine": "bm25s", "method": sparse.method, "k1": sparse.k1, "b": sparse.b},
            "dense": {"engine": "faiss", "kind": dense.kind if dense is not None else None,
                      "type": type(dense.index).__name__ if dense is not None else None},
            "built_at": now_iso(),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        crash_point("index_written")
        _fsync_tree(tmp)
        final = self.folder(version)
        if final.exists():  # left by an earlier attempt that crashed before its commit
            shutil.rmtree(final)
        os.rename(tmp, final)
        _fsync_dir(self.index_dir)

    def load(self, version: int) -> Snapshot:
        folder = self.folder(version)
        manifest = json.loads((folder / "manifest.json").read_text())
        dense = DenseIndex.load(folder / "dense.faiss") if (folder / "dense.faiss").exists() else None
        return Snapshot(version, manifest, dense, SparseIndex.load(folder / "sparse"))

    def prune(self, version: int) -> None:
        """Name `version` as current and drop folders older than KEEP_INDEX_VERSIONS."""
        _atomic_write_text(self.index_dir / "CURRENT", f"v{version}\n")
        for d in self.index_dir.iterdir():
            if d.is_dir() and (d.name.startswith(".tmp-") or
                               (d.name.startswith("v") and d.name[1:].isdigit()
                                and int(d.name[1:]) <= version - KEEP_INDEX_VERSIONS)):
                shutil.rmtree(d, ignore_errors=False)
