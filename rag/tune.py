"""Adapt the embedding model to your documents from questions with known sources.

Humans in the loop: answers promoted from the Review page (DATA_DIR/eval/reviewed.jsonl), any
evaluation set, or a BEIR split (queries + qrels) name, for a question, the document (and page)
that answers it. `tune_embedder` turns each into a training triple against the current index -
(question, the best-matching chunk of the expected document/page, the best-ranked chunk of any
other document) - and fine-tunes a copy of the index's MiniLM with in-batch negatives
(multiple-negatives ranking loss, one hard negative each). Nothing in the index changes: the
tuned model goes to its own folder, and an index is built with it by pointing RAG_EMBED_MODEL
at that folder (an index records its embedder and refuses vectors from another).

    python -m rag.tune --data-dir data --set data/eval/reviewed.jsonl --out data/models/tuned
    RAG_EMBED_MODEL=data/models/tuned python -m ingest FILES --data-dir data-tuned

Defaults (1 epoch, lr 2e-5, batch 32, 10% warm-up, one hard negative) are the usual ones for
sentence-transformers fine-tuning and were fixed before measuring; see README for SciFact.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from rag.config import Settings
from rag.embed import MINILM_MAX_TOKENS, MiniLMEmbedder, embedder_from_settings, minilm_path, tuned_model_id
from rag.errors import RagError
from rag.store import Store, open_store
from rag.store.local import now_iso
from rag.types import file_sha256, index_text


@dataclass(frozen=True)
class Example:
    """A question and the documents (optionally pages) that answer it."""
    question: str
    targets: tuple[tuple[str, int | None], ...]  # (source or file name, page or None)


@dataclass
class TuneReport:
    out: str
    model_id: str
    base: str
    examples: int
    pairs: int
    skipped: list[str] = field(default_factory=list)  # why an example gave no pair
    epochs: int = 1
    lr: float = 2e-5
    batch_size: int = 32
    seed: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    created_at: str = ""
    source: str = ""


def examples_from_set(path: Path) -> list[Example]:
    """Answerable cases of an evaluation set (the format of rag.answer.evaluate)."""
    from rag.answer.evaluate import load_cases, targets

    return [Example(c["question"], tuple(sorted(targets(c), key=str)))
            for c in load_cases(path) if not c["unanswerable"]]


def examples_from_beir(folder: Path, split: str) -> list[Example]:
    from rag.eval import load_beir

    queries, qrels = load_beir(folder, split)
    return [Example(queries[q], tuple((d, None) for d in sorted(qrels[q]))) for q in sorted(queries)]


def _is_document(source: str, name: str) -> bool:
    """A target names a document by its source (BEIR `_id`, full path) or its file name."""
    return source == name or Path(source).name == name


def _matches(source: str, page: int, targets: tuple[tuple[str, int | None], ...]) -> bool:
    return any(_is_document(source, s) and (p is None or p == page) for s, p in targets)


def mine_pairs(store: Store, embedder, examples: list[Example], negatives_from: int = 50
               ) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(question, positive text, hard negative text) per example, from the live index."""
    rows, vectors = store.live_chunks_and_vectors()
    if not rows:
        raise RagError(f"the index in {store.where} is empty: ingest your documents first")
    by_name: dict[str, list[int]] = {}
    for i, (_, source, *_rest) in enumerate(rows):
        by_name.setdefault(source, []).append(i)
        by_name.setdefault(Path(source).name, []).append(i)
    Q = embedder.embed([e.question for e in examples])
    pairs, skipped = [], []
    for e, q in zip(examples, Q):
        candidates = sorted({i for s, _ in e.targets for i in by_name.get(s, [])
                             if _matches(rows[i][1], rows[i][2], e.targets)})
        if not candidates:
            skipped.append(f"{e.question[:60]!r}: its document/page is not in the index")
            continue
        sims = vectors @ q
        best = max(candidates, key=lambda i: sims[i])
        top = np.argpartition(-sims, min(negatives_from, len(sims) - 1))[:negatives_from]
        top = top[np.argsort(-sims[top])]
        wrong = [i for i in top.tolist() if not any(_is_document(rows[i][1], s) for s, _ in e.targets)]
        if not wrong:
            skipped.append(f"{e.question[:60]!r}: no other document to contrast with")
            continue
        text = lambda i: index_text(rows[i][3], rows[i][4])  # noqa: E731
        pairs.append((e.question, text(best), text(wrong[0])))
    return pairs, skipped


def train(base_folder: str, pairs: list[tuple[str, str, str]], out: Path, epochs: int = 1,
          lr: float = 2e-5, batch_size: int = 32, seed: int = 0,
          progress: Callable[[int, int, float], None] | None = None) -> list[float]:
    """Multiple-negatives ranking loss with one hard negative; saves the model to `out`."""
    import torch
    from sentence_transformers import SentenceTransformer

    if len(pairs) < 2:
        raise RagError(f"tuning needs at least 2 questions whose documents are indexed, got {len(pairs)}")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = SentenceTransformer(base_folder, device="cpu")  # a fresh copy: the cached one stays as is
    model.max_seq_length = MINILM_MAX_TOKENS
    prepare = getattr(model, "preprocess", None) or model.tokenize
    model.train()
    steps = epochs * -(-len(pairs) // batch_size)
    warm = max(1, steps // 10)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (steps - s) / steps))

    def encode(texts: list[str]):
        return torch.nn.functional.normalize(model(prepare(texts))["sentence_embedding"], dim=-1)

    losses, step, order = [], 0, list(pairs)
    for _ in range(epochs):
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            if len(batch) < 2:  # a lone last example has no in-batch negatives
                continue
            q = encode([b[0] for b in batch])
            p = encode([b[1] for b in batch] + [b[2] for b in batch])
            loss = torch.nn.functional.cross_entropy(q @ p.T * 20.0, torch.arange(len(batch)))
            loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            losses.append(round(float(loss.item()), 4))
            if progress:
                progress(step, steps, losses[-1])
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    return losses


def tune_embedder(settings: Settings, examples: list[Example], out: Path, source: str = "",
                  epochs: int = 1, lr: float = 2e-5, batch_size: int = 32, seed: int = 0,
                  progress: Callable[[int, int, float], None] | None = None) -> TuneReport:
    """Mine pairs from the index in settings.data_dir, fine-tune its MiniLM, write `out`."""
    embedder = embedder_from_settings(settings)
    if not isinstance(embedder, MiniLMEmbedder):
        raise RagError("tuning works on the local MiniLM embedder (RAG_EMBEDDER=minilm); "
                       f"{embedder.id!r} is served elsewhere")
    out = Path(out)
    if (out / "model.safetensors").exists():
        raise RagError(f"{out} already holds a model: choose a new --out folder (indexes built with "
                       "the old one would no longer match it)")
    store = open_store(settings)
    store.check_embedder(embedder.id, embedder.dim)
    t0 = time.perf_counter()
    pairs, skipped = mine_pairs(store, embedder, examples)
    base = embedder.model_folder or minilm_path()
    losses = train(base, pairs, out, epochs, lr, batch_size, seed, progress)
    report = TuneReport(str(out), tuned_model_id(out), embedder.id, len(examples), len(pairs), skipped,
                        epochs, lr, batch_size, seed, losses, round(time.perf_counter() - t0, 1),
                        now_iso(), source)
    (out / "tune.json").write_text(json.dumps(asdict(report), indent=2), encoding="utf-8")
    return report


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rag.tune", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, help="the index to mine pairs from (default RAG_DATA_DIR or ./data)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--set", type=Path, help="an evaluation set JSONL (answerable cases are used)")
    src.add_argument("--dataset", type=Path, help="a BEIR folder (queries.jsonl + qrels/SPLIT.tsv)")
    ap.add_argument("--split", default="train", help="BEIR split to learn from (default train)")
    ap.add_argument("--out", type=Path, required=True, help="a new folder for the tuned model")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(list(argv) if argv is not None else None)
    settings = Settings.load(data_dir=args.data_dir)  # None = RAG_DATA_DIR or ./data
    try:
        if args.set:
            examples, source = examples_from_set(args.set), f"{args.set} sha256:{file_sha256(args.set)[:16]}"
        else:
            examples = examples_from_beir(args.dataset, args.split)
            source = f"{args.dataset} split {args.split}"
        print(f"{len(examples)} questions with known sources; mining pairs from {settings.data_dir}",
              file=sys.stderr)
        report = tune_embedder(settings, examples, args.out, source, args.epochs, args.lr, args.batch_size,
                               args.seed, lambda s, n, loss: print(f"step {s}/{n} loss {loss:.3f}",
                                                                   file=sys.stderr, flush=True))
    except (RagError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for why in report.skipped[:5]:
        print(f"skipped {why}", file=sys.stderr)
    if len(report.skipped) > 5:
        print(f"skipped {len(report.skipped) - 5} more", file=sys.stderr)
    print(json.dumps({k: v for k, v in asdict(report).items() if k != "losses"}))
    print(f"Build an index with it: RAG_EMBED_MODEL={report.out} python -m ingest FILES --data-dir NEW_DIR",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
