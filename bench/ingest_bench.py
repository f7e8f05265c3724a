"""Ingestion benchmark: prints figures, and ratios against a baseline run in the same process.

    python bench/ingest_bench.py [--eval ../shared/eval] [--limit N] [--skip-scifact]

1. PDF parse + chunk throughput (pages/s) on pdfs/real.
2. The adversarial sweep over all of pdfs/ (every file indexed or a reason): counts.
3. SciFact corpus.jsonl through the whole pipeline vs. raw SentenceTransformer.encode on
   the same chunk texts (and, with sentence vectors on, the same distinct sentences):
   chunks/s of each and their ratio (goal >= 0.9). RAG_SENTENCE_VECTORS=0 measures without.
"""
from __future__ import annotations

import argparse
import collections
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.chunk import chunk_pages, sentence_spans  # noqa: E402
from ingest.load import PdfParser, load_file  # noqa: E402
from ingest.pipeline import ingest_paths  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.embed import MiniLMEmbedder, token_counter  # noqa: E402
from rag.errors import FileRejected  # noqa: E402
from rag.store import LocalStore  # noqa: E402
from rag.types import index_text  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pdf_throughput(folder: Path) -> dict:
    count = token_counter()
    pages = chunks = 0
    t = time.perf_counter()
    with PdfParser() as parser:
        for f in sorted(folder.glob("*.pdf")):
            try:
                for doc in load_file(f, 50 * 2**20, parser):
                    cs, _ = chunk_pages("bench", doc.pages, doc.kind, count)
                    pages += len(doc.pages)
                    chunks += len(cs)
            except FileRejected as e:
                print(f"  {f.name}: {e.reason}")
    dt = time.perf_counter() - t
    return {"pages": pages, "chunks": chunks, "seconds": round(dt, 2), "pages_per_s": round(pages / dt, 1)}


def sweep(folder: Path, embedder) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(data_dir=Path(tmp), parse_timeout_s=30)
        t = time.perf_counter()
        report = ingest_paths([folder], settings, embedder=embedder)
        dt = time.perf_counter() - t
        by = collections.Counter((f.status, f.reason) for f in report.files if f.path.endswith(".pdf"))
        problems = LocalStore(tmp).check()
    return {"files": sum(by.values()), "seconds": round(dt, 1), "consistent": not problems,
            "by_status_reason": {f"{s}/{r}" if r else s: n for (s, r), n in sorted(by.items(), key=str)}}


def scifact(corpus: Path, limit: int | None, embedder: MiniLMEmbedder, keep: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        src = corpus
        if limit:
            src = Path(tmp) / "corpus.jsonl"
            with open(corpus) as f, open(src, "w") as out:
                for _, line in zip(range(limit), f):
                    out.write(line)
        data_dir = keep or Path(tmp) / "data"
        if keep is not None and keep.exists():
            sys.exit(f"{keep} exists: the benchmark needs an empty data dir to measure a full ingest")
        settings = Settings.load(data_dir=data_dir)
        t = time.perf_counter()
        report = ingest_paths([src], settings, embedder=embedder)
        pipeline_s = time.perf_counter() - t
        store = LocalStore(settings.data_dir)
        texts = [index_text(h, x) for h, x in store.conn.execute(
            "SELECT heading, text FROM chunks ORDER BY vid")]
        def raw_encode(items: list[str]) -> float:
            t = time.perf_counter()
            embedder.model.encode(items, batch_size=embedder.batch_size, normalize_embeddings=True,
                                  convert_to_numpy=True, show_progress_bar=False)
            return time.perf_counter() - t

        raw_chunks_s = raw_encode(texts)
        # The same work the pipeline does when sentence vectors are on: each distinct sentence once.
        sentences = list(dict.fromkeys(t[a:b] for t in texts for a, b in sentence_spans(t))) \
            if settings.sentence_vectors else []
        raw_sent_s = raw_encode(sentences) if sentences else 0.0
        raw_s = raw_chunks_s + raw_sent_s
        n = len(texts)
        docs = report.files[0].documents
        return {"documents": docs, "chunks": n, "sentences": len(sentences), "pipeline_s": round(pipeline_s, 1),
                "raw_encode_chunks_s": round(raw_chunks_s, 1), "raw_encode_sentences_s": round(raw_sent_s, 1),
                "pipeline_chunks_per_s": round(n / pipeline_s, 2), "raw_chunks_per_s": round(n / raw_s, 2),
                "ratio_pipeline_to_raw": round(raw_s / pipeline_s, 3),
                "pipeline_stage_s": {k: round(v, 1) for k, v in report.timings.items()},
                "check": store.check() or "ok"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--eval", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "eval")
    ap.add_argument("--limit", type=int, help="only the first N SciFact documents")
    ap.add_argument("--skip-scifact", action="store_true")
    ap.add_argument("--out", type=Path, help="also write the figures as JSON here")
    ap.add_argument("--keep-data", type=Path, help="build the SciFact index here and keep it (must not exist)")
    args = ap.parse_args()
    if not args.eval.exists():
        sys.exit(f"evaluation data not found at {args.eval} (pass --eval)")
    embedder = MiniLMEmbedder()
    embedder.embed(["warm up"])  # model load is not part of either measurement
    results = {"pdf_parse_chunk": pdf_throughput(args.eval / "pdfs" / "real")}
    print("PDF parse+chunk:", json.dumps(results["pdf_parse_chunk"]), flush=True)
    results["adversarial_sweep"] = sweep(args.eval / "pdfs", embedder)
    print("sweep:", json.dumps(results["adversarial_sweep"], indent=1), flush=True)
    if not args.skip_scifact:
        results["scifact_ingest"] = scifact(args.eval / "scifact" / "corpus.jsonl", args.limit, embedder,
                                            args.keep_data)
        print("scifact:", json.dumps(results["scifact_ingest"], indent=1), flush=True)
    results["peak_rss_mb"] = round(rss_mb())
    print("peak RSS MB:", results["peak_rss_mb"])
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
