"""A thin CLI over the retrieval funnel: `python -m rag search`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rag.config import Settings
from rag.errors import RagError


def hit_json(hit) -> dict:
    return {"source": hit.source, "chunk_id": hit.chunk.id, "doc_id": hit.chunk.doc_id, "page": hit.chunk.page,
            "heading": hit.chunk.heading, "score": hit.scores.get("rerank", hit.scores.get("fused")),
            "scores": hit.scores, "ranks": hit.ranks, "text": hit.chunk.text}


def ask(args) -> int:
    from rag.answer import Answerer

    try:
        settings = Settings.load(data_dir=args.data_dir, prompt_version=args.prompt_version,
                                 answer_cache=False if args.no_cache else None)
        stream = Answerer(settings).stream(args.question, history=args.history, session="cli")
        for delta in stream:
            if not args.json:
                print(delta, end="", flush=True)
    except RagError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2
    answer = stream.answer
    if args.json:
        print(json.dumps(answer.to_json(), ensure_ascii=False))
        return 0
    print()
    for note in answer.notices:
        print(f"\nnote: {note}")
    seen = set()
    for c in answer.citations:
        if (c.n, c.quote) in seen:
            continue
        seen.add((c.n, c.quote))
        flag = "verified" if c.verified else "NOT verified"
        flag += ", inferred" if c.inferred else ""
        print(f"[{c.n}] {c.source} p{c.page} ({flag}): \"{c.quote}\"")
    if answer.abstained:
        for n, h in enumerate(answer.passages[:3], 1):
            print(f"  closest {n}: {h.source} p{h.chunk.page}: {' '.join(h.chunk.text.split())[:160]}")
    t = answer.trace["timings_ms"]
    print(f"({answer.mode}, {t.get('total', 0):.0f} ms, answer id {answer.id})")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rag")
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("search", help="run the retrieval funnel for a question or a file of queries")
    s.add_argument("question", nargs="?")
    s.add_argument("--data-dir", type=Path)
    s.add_argument("--k", type=int, default=10)
    s.add_argument("--json", action="store_true", help="one JSON line per query")
    s.add_argument("--queries", type=Path, help="JSONL with `_id` and `text` per line")
    s.add_argument("--reranker", help="none | maxsim | cross-encoder | remote")
    a = sub.add_parser("ask", help="answer a question from the indexed documents, with citations")
    a.add_argument("question")
    a.add_argument("--data-dir", type=Path)
    a.add_argument("--json", action="store_true", help="print the answer, citations and trace as JSON")
    a.add_argument("--history", action="append", default=[], metavar="QUESTION",
                   help="an earlier question of the conversation (repeat, oldest first)")
    a.add_argument("--no-cache", action="store_true", help="do not read or write the answer cache")
    a.add_argument("--prompt-version", help="a prompt file name from rag/answer/prompts, e.g. answer-v1")
    args = ap.parse_args(argv)
    if args.command == "ask":
        return ask(args)
    if bool(args.question) == bool(args.queries):
        ap.error("give a QUESTION or --queries FILE.jsonl (one of them)")
    try:
        from rag.factory import build_retriever

        retriever = build_retriever(Settings.load(data_dir=args.data_dir, reranker=args.reranker))
        if args.queries:
            queries = [(q.get("_id", q.get("id")), q["text"]) for q in map(json.loads, open(args.queries))]
        else:
            queries = [(None, args.question)]
        for qid, text in queries:
            res = retriever.search(text, k=args.k)
            if args.json:
                print(json.dumps({"query_id": qid, "query": text, "reranker": res.reranker,
                                  "hits": [hit_json(h) for h in res.hits],
                                  "timings_ms": {k: round(v, 2) for k, v in res.timings_ms.items()}}), flush=True)
            else:
                print(f"# {text}  ({res.timings_ms.get('total', 0):.0f} ms, reranker {res.reranker})")
                for i, h in enumerate(res.hits, 1):
                    snippet = " ".join(h.chunk.text.split())[:160]
                    print(f"{i:>3}. {h.source} p{h.chunk.page}  {snippet}")
    except RagError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2
    return 0
