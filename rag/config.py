"""One Settings object, read from the environment and .streamlit/secrets.toml.

Environment variables win over secrets.toml; both use the same upper-case names
(RAG_DATA_DIR, RAG_EMBEDDER, ...). Defaults run with no API key and no network.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from rag.errors import RagError

SECRETS_FILE = Path(".streamlit/secrets.toml")


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    # Embedder: "minilm" (packaged all-MiniLM-L6-v2, default) or "openai" (any
    # OpenAI-compatible /v1/embeddings endpoint). embed_model: the openai model name, or for
    # minilm a folder written by `python -m rag.tune` (a MiniLM fine-tuned on your questions).
    embedder: str = "minilm"
    embed_base_url: str | None = None
    embed_api_key: str | None = None
    embed_model: str | None = None
    embed_batch_size: int = 64
    # Chunks embedded per call across documents (bigger: less padding waste, more memory).
    ingest_batch_chunks: int = 4096
    # Ingestion limits.
    max_file_mb: float = 50.0
    parse_timeout_s: float = 60.0
    # OCR for PDF pages without a usable text layer (ingest/ocr.py); RAG_OCR=off refuses scans.
    ocr: bool = True
    # How much `python -m ingest` lowers its CPU priority (0: not at all), so that questions
    # asked in the app meanwhile get the cores first (ingest/__main__.py).
    ingest_nice: int = 10
    # Chunking, in embedding-model tokens (MiniLM's window is 256).
    chunk_tokens: int = 200
    chunk_overlap_tokens: int = 40
    # Sentence vectors for the maxsim reranker, computed at ingestion (about doubles its cost;
    # off by default because maxsim did not measurably help on SciFact test, see README).
    sentence_vectors: bool = False
    # PostgreSQL (rag/store/postgres.py): one database for the whole product state, e.g.
    # postgresql://user:password@host/dbname. Unset: SQLite + FAISS + BM25 files in data_dir.
    database_url: str | None = None
    # With PostgreSQL, libraries up to this many chunks are searched exactly in each replica's
    # memory; above it (or above ann_threshold) pgvector's HNSW index answers, built by the
    # publish that first takes the library past it. Give replicas and ingest jobs one value.
    pg_exact_max_chunks: int = 20_000
    # Above this many chunks FAISS switches from exact search to IVF (0 = always exact).
    ann_threshold: int = 1_000_000
    # Retrieval funnel (see rag/retrieve.py).
    dense_k: int = 200
    sparse_k: int = 200
    fusion: str = "score"  # chosen on SciFact train: 0.732 vs RRF 0.728 nDCG@10
    rrf_k: int = 60
    w_dense: float = 1.0
    w_sparse: float = 1.0
    # Dense pseudo-relevance feedback (0 = off): a second dense search with the query moved
    # towards the first fusion's top prf_k chunks, fused with BM25 at weight w_prf. Chosen on
    # SciFact train (bench/funnel_prf.py): nDCG@10 0.736 -> 0.744; on test 0.732 -> 0.738.
    prf_k: int = 2
    prf_alpha: float = 0.75
    w_prf: float = 1.75
    # The answerer's second BM25 list for a figure question that names its period (the metric,
    # and the period as column headers name it), fused at this weight; 0 = off. Chosen on the
    # financial tune/dev/dev2 sets (0.3 / 0.5 / 0.75 / 1.0 tried; see the README's issue 10).
    w_period: float = 0.3
    # ... and that list's top period_pin chunks always reach the answerer's unit rerank; 0 = off.
    # Chosen on the same sets: 5 (3: no change; 8: two tune cases lost).
    period_pin: int = 5
    # L2 reranker: "none", "maxsim" (packaged MiniLM, sentence-level), "cross-encoder"
    # (RAG_RERANKER_MODEL: a local path or hub id) or "remote" (a /v1/rerank endpoint).
    reranker: str = "none"
    reranker_model: str = "cross-encoder/ms-marco-MiniLM-L-6-v2"
    reranker_base_url: str | None = None
    reranker_api_key: str | None = None
    rerank_m: int = 100
    w_rerank: float = 0.5  # chosen on SciFact train (0.3 / 0.5 / 0.7 / 1.0 tried)
    # Answering (rag/answer). No RAG_LLM_BASE_URL = the embedded extractive answerer.
    llm_base_url: str | None = None      # any OpenAI-compatible endpoint, e.g. http://localhost:8080/v1
    llm_api_key: str | None = None
    llm_model: str | None = None         # empty: the server's first model
    llm_timeout_s: float = 60.0
    llm_max_retries: int = 2             # on 408/409/429/5xx and connection errors, with backoff
    llm_max_tokens: int = 300
    llm_price_in_per_mtok: float = 0.0   # USD per million prompt tokens, for the cost estimate
    llm_price_out_per_mtok: float = 0.0
    prompt_version: str = "answer-v1"
    rewrite_prompt_version: str = "rewrite-v1"
    answer_k: int = 5                    # passages given to the answerer
    # Cheap first: with an LLM configured, a question that names its period and is answered by a
    # table row of the asked metric with that period's column (or whose period the documents
    # do not report) gets the extracted answer without calling the LLM. See the README's issue 10.
    extract_first: bool = True
    # "calibrated" = the thresholds in rag/answer/calibration.json (see how they were chosen there).
    abstain_threshold: str = "calibrated"
    support_threshold: str = "calibrated"
    answer_cache: bool = True
    # Access control (rag/auth.py): none set = open app on localhost.
    app_password: str | None = None
    admin_password: str | None = None
    admin_emails: str | None = None      # comma-separated, for OIDC logins via Streamlit's [auth]

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @classmethod
    def load(cls, secrets_file: Path | None = None, **overrides: Any) -> "Settings":
        values: dict[str, Any] = {}
        secrets_path = secrets_file if secrets_file is not None else SECRETS_FILE
        if secrets_path.exists():
            try:
                secrets = tomllib.loads(secrets_path.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as e:
                raise RagError(f"{secrets_path} is not valid TOML: {e}") from e
            values.update({k.lower().removeprefix("rag_"): v for k, v in secrets.items()})
        for f in fields(cls):
            env = os.environ.get(f"RAG_{f.name.upper()}")
            if env is not None and env != "":
                values[f.name] = env
        if os.environ.get("OPENAI_API_KEY"):
            values.setdefault("embed_api_key", os.environ["OPENAI_API_KEY"])
            values.setdefault("llm_api_key", os.environ["OPENAI_API_KEY"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **{k: _coerce(k, v) for k, v in values.items() if k in _FIELDS})


_FIELDS = {f.name: f for f in fields(Settings)}


def _coerce(name: str, value: Any) -> Any:
    default = getattr(Settings(), name)
    try:
        if isinstance(default, Path):
            return Path(value)
        if isinstance(default, bool):
            return str(value).lower() in {"1", "true", "yes", "on"}
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError as e:
        raise RagError(f"setting RAG_{name.upper()}={value!r} is not a valid {type(default).__name__}") from e
    return value
