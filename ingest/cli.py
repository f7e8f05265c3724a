"""A thin CLI over ingest.pipeline and the store."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from rag.config import Settings
from rag.errors import RagError
from rag.store import open_store

EPILOG = """examples:
  python -m ingest docs/ report.pdf --data-dir data        index files and folders
  python -m ingest corpus.jsonl --data-dir data --json     bulk import, machine-readable report
  python -m ingest --delete docs/old.pdf --data-dir data   remove a document everywhere
  python -m ingest --list --data-dir data                  what is indexed
  python -m ingest --check --data-dir data                 SQLite, FAISS and BM25 agree?
  python -m ingest --copy-to postgresql://u:p@host/db --data-dir data
                                                           move a local library into PostgreSQL
                                                           (vectors as stored), then check it
  python -m ingest --copy-from postgresql://u:p@host/db --data-dir new-data   and back
exit status: 0 all good, 1 some files failed (the others were indexed), 2 nothing done."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ingest", description=__doc__, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", type=Path, help="files or folders (searched recursively)")
    p.add_argument("--data-dir", type=Path, help="index folder (default: RAG_DATA_DIR or ./data)")
    p.add_argument("--json", action="store_true", help="print a machine-readable report on stdout")
    p.add_argument("--delete", nargs="+", metavar="SOURCE", help="remove these documents from every index")
    p.add_argument("--list", action="store_true", help="list indexed documents")
    p.add_argument("--check", action="store_true", help="verify SQLite, FAISS and BM25 agree")
    p.add_argument("--rebuild-index", action="store_true", help="rebuild FAISS and BM25 from SQLite")
    p.add_argument("--sentence-vectors", action="store_true",
                   help="compute sentence vectors (maxsim reranker) for chunks that lack them")
    p.add_argument("--if-empty", action="store_true", help="only ingest when the index has no documents")
    p.add_argument("--max-file-mb", type=float, help="refuse larger files (default 50)")
    p.add_argument("--timeout", type=float, help="PDF parse limit in seconds: stop a file when no page finishes within it, or when it takes longer than it + 2 s per page (default 60)")
    p.add_argument("--copy-to", metavar="URL",
                   help="copy the library in --data-dir into this empty PostgreSQL database, "
                        "without re-embedding, publish it in one transaction and check it")
    p.add_argument("--copy-from", metavar="URL",
                   help="copy the library in this PostgreSQL database into the empty --data-dir")
    p.add_argument("--check-queries", type=int, default=50, metavar="N",
                   help="sample queries whose search results a copy compares (default 50)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _emit(args, payload: dict, lines: list[str]) -> None:
    if args.json:
        print(json.dumps(payload, indent=None))
    else:
        for line in lines:
            print(line)


def main(argv: list[str] | None = None, lower_priority: bool = False) -> int:
    """`lower_priority`: run at RAG_INGEST_NICE, as `python -m ingest` does. Indexing from the
    command line is background work: at a lower CPU priority it still gets every idle core, and
    questions asked in the app meanwhile get the cores first (evidence step p50 317 -> 263 ms on
    2 cores with this ingest beside it, bench/answer_latency.py). The PDF parse worker runs at
    nice 10 at least either way (ingest.load.WORKER_NICE)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.load(data_dir=args.data_dir, max_file_mb=args.max_file_mb,
                                 parse_timeout_s=args.timeout)
        if lower_priority and settings.ingest_nice:
            os.nice(settings.ingest_nice)
        if args.copy_to or args.copy_from:
            return _copy(args, settings)
        if args.delete:
            from ingest.pipeline import delete_sources

            ids, version = delete_sources(args.delete, settings)
            _emit(args, {"deleted": ids, "index_version": version},
                  [f"deleted {len(ids)} document(s); index version {version}"])
            return 0
        if args.list:
            docs = open_store(settings).documents()
            _emit(args, {"documents": docs},
                  [f"{d['id']}  {d['pages']:>4}p {d['n_chunks']:>5}c  {d['source']}" for d in docs]
                  + [f"{len(docs)} document(s)"])
            return 0
        if args.sentence_vectors:
            from ingest.pipeline import backfill_sentence_vectors

            n = backfill_sentence_vectors(settings)
            _emit(args, {"chunks_updated": n}, [f"sentence vectors computed for {n} chunk(s)"])
            return 0
        if args.check or args.rebuild_index:
            store = open_store(settings)
            if args.rebuild_index:
                from ingest.pipeline import rebuild_index

                rebuild_index(settings)
            problems = store.check()
            _emit(args, {"ok": not problems, "problems": problems, **store.stats()},
                  problems or [f"ok: index version {store.version()}, {store.stats()['chunks']} chunks agree "
                               "in SQLite, FAISS and BM25"])
            return 1 if problems else 0
        if not args.paths:
            parser.error("give files or folders to ingest (or --delete/--list/--check)")
        if args.if_empty and open_store(settings).stats()["documents"]:
            _emit(args, {"skipped": "index not empty"}, ["index not empty; nothing to do (--if-empty)"])
            return 0
        return _ingest(args, settings)
    except RagError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2


def _postgres_url(url: str, option: str) -> str:
    if not url.startswith(("postgresql://", "postgres://")):
        raise RagError(f"{option} takes a PostgreSQL URL such as postgresql://user:password@host:5432/dbname "
                       f"(got {url!r})")
    return url


def _copy(args, settings: Settings) -> int:
    """--copy-to / --copy-from: a library moves between DATA_DIR and PostgreSQL, then is checked."""
    from rag.log import AnswerLog, PgAnswerLog
    from rag.store import LocalStore
    from rag.store.copy import copy_library, refuse_unless_empty
    from rag.store.postgres import PgStore

    if args.copy_to and args.copy_from:
        raise RagError("give --copy-to or --copy-from, not both")
    if args.paths:
        raise RagError("--copy-to/--copy-from copy a whole library; give no files with them")
    url = _postgres_url(args.copy_to or args.copy_from, "--copy-to" if args.copy_to else "--copy-from")
    local = LocalStore(settings.data_dir, ann_threshold=settings.ann_threshold)
    has_local_log = (settings.data_dir / "log.sqlite").exists()
    if args.copy_to:
        source, target = local, PgStore(url)
        source_log, target_log = (AnswerLog(settings.data_dir) if has_local_log else None), PgAnswerLog(url)
    else:
        source, target = PgStore(url), local
        source_log, target_log = PgAnswerLog(url), AnswerLog(settings.data_dir)
    refuse_unless_empty(target)  # (copy_library checks again, holding the locks)
    if source_log is not None:
        target_log.refuse_unless_empty()  # before anything is copied

    def progress(stage: str, done: int, total: int) -> None:
        if not args.quiet:
            print(f"{stage}: {done}/{total}", file=sys.stderr)

    report = copy_library(source, target, queries=args.check_queries, progress=progress)
    if source_log is not None:
        report.log = target_log.copy_from(source_log)
    _emit(args, report.to_dict(), report.lines())
    return 0 if report.ok else 1


def _ingest(args, settings: Settings) -> int:
    from tqdm import tqdm

    from ingest.pipeline import ingest_paths

    bar = None if args.quiet else tqdm(total=100, unit="%", file=sys.stderr, desc="ingest", dynamic_ncols=True,
                                       bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")

    def progress(event) -> None:
        bar.n = round(event.fraction * 100, 1)
        bar.set_postfix_str(event.label(), refresh=False)
        bar.refresh()

    try:
        report = ingest_paths(args.paths, settings, progress=progress if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    lines = []
    for f in report.files:
        if f.status == "error":
            lines.append(f"error      {f.message} [{f.reason}]")
        else:
            what = f"{f.documents} docs, " if f.documents > 1 else ""
            lines.append(f"{f.status:<10} {f.path} ({what}{f.pages} pages, {f.chunks} chunks)")
    counts = report.counts()
    lines.append(", ".join(f"{v} {k}" for k, v in sorted(counts.items())) +
                 f"; {report.embedded_chunks} chunks embedded in {report.seconds:.1f}s; "
                 f"index version {report.index_version}")
    _emit(args, report.to_dict(), lines)
    return 1 if report.failed else 0
