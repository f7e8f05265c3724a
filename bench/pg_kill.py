"""kill -9 of an ingest into PostgreSQL mid-publish: does the previous version keep serving,
does a rerun complete, is `python -m ingest --check` clean afterwards?

    nice -n 10 python bench/pg_kill.py [--trials 10] [--database-url postgresql://...] [--out FILE]

A base library of 40 notes is ingested first. Each trial starts an ingest process that adds 8
new notes and rewrites 2 existing ones (so its publish both adds and replaces documents), and
SIGKILLs it at a different point:
  - at the store's crash points inside publish (RAG_CRASH_AT: index_written, before_commit,
    after_commit): exactly before or after the commit;
  - or a delay after the worker announces the publish (0 to 80 ms): wherever it happens to be
    (planning, the transaction, the commit, the ingestion log).
Throughout, a reader thread (its own connection, as an app replica) searches every 20 ms and
checks that each state it sees is whole: the old version with exactly the old documents, or the
new version with every new note and every rewritten note replaced (never both copies, never a
part). After the kill: the version is the old one (killed before the commit) or the new one
(after it); then the same ingest is rerun to completion (it resumes from the pending rows of
the dead run) and `python -m ingest --check` is run in a fresh process.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VOCAB = ("river valley mountain harbour engine signal copper forest winter summer orbit library "
         "garden bridge tunnel meadow lantern compass glacier canyon").split()
CRASH_POINTS = ["index_written", "before_commit", "after_commit"]
DELAYS_MS = [0, 2, 5, 10, 20, 40, 80]


def note(path: Path, seed: int, words: int = 150) -> Path:
    body = " ".join(VOCAB[(seed * 7 + j * 3 + j // 5) % len(VOCAB)] + ("." if j % 12 == 11 else "")
                    for j in range(words))
    path.write_text(f"# Note {path.stem}\n\nThis is note {path.stem}, version {seed}. {body}\n")
    return path


def worker(url: str, data_dir: str, paths: list[str]) -> None:
    """One ingest, as `python -m ingest` runs it, announcing each stage on stdout."""
    from ingest.pipeline import ingest_paths
    from rag.config import Settings

    last = {"stage": None}

    def progress(event) -> None:
        if event.stage != last["stage"]:
            last["stage"] = event.stage
            print(event.stage, flush=True)

    report = ingest_paths([Path(p) for p in paths], Settings.load(data_dir=Path(data_dir), database_url=url),
                          progress=progress)
    print(json.dumps({"done": report.index_version, "embedded": report.embedded_chunks,
                      "failed": len(report.failed)}), flush=True)


class Reader(threading.Thread):
    """An app replica: searches every 20 ms and checks that what it sees is one whole version."""

    def __init__(self, url: str, embedder):
        super().__init__(daemon=True)
        from rag.retrieve import Retriever
        from rag.store.postgres import PgStore

        self.store = PgStore(url)
        self.retriever = Retriever(self.store, embedder)
        self.stop = threading.Event()
        self.expect: tuple[int, dict, set, set] | None = None  # (old version, old docs, new sources, rewritten)
        self.polls = self.errors = self.torn = self.empty = 0
        self.versions_seen: set[int] = set()
        self.messages: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            expect = self.expect
            try:
                hits = self.retriever.search("glacier compass lantern harbour", k=5).hits
                with self.store.read_view():
                    version = self.store.version()
                    docs = {r["source"]: r["id"] for r in self.store.query(
                        "SELECT source, id FROM documents WHERE status = 'live'")}
                self.polls += 1
                self.empty += not hits
                if expect is not None:
                    self.versions_seen.add(version)
                    problem = self.whole(version, docs, *expect)
                    if problem:
                        self.torn += 1
                        self.messages.append(problem)
            except Exception as e:  # a reader error is what this benchmark counts, then goes on
                self.errors += 1
                self.messages.append(f"{type(e).__name__}: {e}")
            time.sleep(0.02)

    @staticmethod
    def whole(version: int, docs: dict, old_version: int, old_docs: dict, new: set, rewritten: set) -> str | None:
        if version == old_version:
            return None if docs == old_docs else f"version {version} but documents differ from it"
        if version == old_version + 1:
            missing = new - docs.keys()
            stale = [s for s in rewritten if docs.get(s) == old_docs.get(s)]
            if missing or stale:
                return f"version {version} with {len(missing)} new notes missing, {len(stale)} rewrites not applied"
            return None
        return f"unexpected version {version} (expected {old_version} or {old_version + 1})"


def run_worker(url: str, data_dir: Path, paths: list[Path], crash_at: str | None = None,
               delay_ms: float | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RAG_DATABASE_URL", "RAG_CRASH_AT")}
    if crash_at:
        env["RAG_CRASH_AT"] = crash_at
    proc = subprocess.Popen([sys.executable, __file__, "--worker", url, str(data_dir), *map(str, paths)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stages, killed_at = [], None
    for line in proc.stdout:
        line = line.strip()
        stages.append(line)
        if line == "publish" and delay_ms is not None:
            time.sleep(delay_ms / 1000)
            proc.send_signal(signal.SIGKILL)
            killed_at = f"publish + {delay_ms} ms"
            break
    proc.wait()
    stderr = proc.stderr.read()
    last = stages[-1] if stages else ""
    result = json.loads(last) if last.startswith("{") else {}
    return {"rc": proc.returncode, "stages": stages, "killed_at": killed_at or (f"crash point {crash_at}" if crash_at else None),
            "result": result, "stderr_tail": stderr[-400:] if proc.returncode not in (0, -9) else ""}


def check_cli(url: str, data_dir: Path) -> dict:
    env = {**os.environ, "RAG_DATABASE_URL": url}
    env.pop("RAG_CRASH_AT", None)
    done = subprocess.run([sys.executable, "-m", "ingest", "--check", "--json", "--data-dir", str(data_dir)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    report = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
    return {"rc": done.returncode, "ok": report.get("ok"), "problems": report.get("problems")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--database-url", help="an empty database (default: a throwaway pgserver)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    from bench.pg_bench import pg_url, report, stop_servers
    from rag.embed import MiniLMEmbedder
    from rag.store.postgres import PgStore

    tmp = Path(tempfile.mkdtemp(prefix="rag-pg-kill-"))
    stack: list = []
    trials = []
    try:
        url = pg_url(args, stack)
        docs = tmp / "docs"
        docs.mkdir()
        base = [note(docs / f"base-{i:03d}.md", i) for i in range(40)]
        first = run_worker(url, tmp / "replica", base)
        assert first["rc"] == 0, first
        store = PgStore(url)
        reader = Reader(url, MiniLMEmbedder())
        reader.start()
        plan = [(p, None) for p in CRASH_POINTS] + [(None, d) for d in DELAYS_MS]
        for i in range(args.trials):
            crash_at, delay = plan[i % len(plan)]
            old_version = store.version()
            old_docs = {d["source"]: d["id"] for d in store.documents()}
            new = [note(docs / f"t{i:02d}-{j}.md", 1000 + i * 10 + j) for j in range(8)]
            rewritten = [note(base[(2 * i + j) % len(base)], 5000 + i * 10 + j) for j in range(2)]
            paths = new + rewritten
            reader.expect = (old_version, old_docs, {str(p) for p in new}, {str(p) for p in rewritten})
            t = time.perf_counter()
            killed = run_worker(url, tmp / "replica", paths, crash_at=crash_at, delay_ms=delay)
            after_kill = store.version()
            time.sleep(0.1)  # the reader sees the state the kill left
            rerun = run_worker(url, tmp / "replica", paths)
            time.sleep(0.1)
            reader.expect = None
            check = check_cli(url, tmp / "replica")
            trial = {
                "trial": i, "killed_at": killed["killed_at"], "kill_rc": killed["rc"],
                "stage_when_killed": killed["stages"][-1] if killed["stages"] else None,
                "version_before": old_version, "version_after_kill": after_kill,
                "outcome": "old version kept" if after_kill == old_version else "new version complete",
                "rerun_rc": rerun["rc"], "rerun_version": rerun["result"].get("done"),
                "rerun_embedded_chunks": rerun["result"].get("embedded"),
                "check_ok": check["ok"], "check_problems": check["problems"],
                "seconds": round(time.perf_counter() - t, 1),
            }
            trials.append(trial)
            print(json.dumps(trial), file=sys.stderr)
        reader.stop.set()
        reader.join(timeout=10)
        out = {
            "trials": trials,
            "killed_by_sigkill": sum(t["kill_rc"] == -9 for t in trials),
            "old_version_kept": sum(t["outcome"] == "old version kept" for t in trials),
            "new_version_complete": sum(t["outcome"] == "new version complete" for t in trials),
            "reruns_completed": sum(t["rerun_rc"] == 0 for t in trials),
            "checks_clean": sum(bool(t["check_ok"]) for t in trials),
            "reader": {"polls": reader.polls, "errors": reader.errors, "torn_states": reader.torn,
                       "empty_results": reader.empty, "versions_seen": sorted(reader.versions_seen),
                       "messages": reader.messages[:10]},
        }
    finally:
        stop_servers(stack)
        shutil.rmtree(tmp, ignore_errors=True)
    report(out, args.out)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        main()
