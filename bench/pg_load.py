"""Load test of the PostgreSQL backend: N app replicas (separate processes, each its own
DATA_DIR, one RAG_DATABASE_URL) x M concurrent chats each, while 2 ingest processes publish.

    nice -n 10 python bench/pg_load.py [--replicas 4] [--chats 10] [--seconds 60]
                                       [--database-url postgresql://...] [--out FILE]

- A base library of 60 notes is ingested first.
- Each replica runs `Service` (what the Streamlit pages call) with --chats threads: ask a
  question (extractive answers, no LLM), then rate it (thumbs up or down, then a comment),
  again and again. Every acknowledged answer id and feedback write is remembered.
- Each replica also watches what it serves: every 50 ms, the version of its loaded snapshot
  (store.snapshot(), which reloads BM25 when the version moves), noting when it first serves
  each version.
- After a few seconds, 2 ingest processes (`python -m ingest`) start at once on different new
  notes; the main process notes when each new version is committed (polling every 10 ms).
Reports: errors (of any kind, in replicas and ingests), acknowledged answers and feedback rows
missing from the database, and for each replica and new version the seconds from its commit
to that replica serving it (target: within 2 s).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pg_kill import VOCAB, note  # noqa: E402


def replica(url: str, data_dir: str, name: str, chats: int, stop_file: str) -> None:
    """One app replica; prints one JSON line with everything it acknowledged, at the end."""
    from rag.config import Settings
    from rag.service import Service

    service = Service(Settings.load(data_dir=Path(data_dir), database_url=url))
    service.store.snapshot()
    service.answerer.ask("warm up the models")
    lock = threading.Lock()
    answers: list[str] = []
    feedback: dict[str, dict] = {}  # answer id -> the state last acknowledged
    errors: list[str] = []
    latencies: list[float] = []
    seen: dict[int, float] = {}
    stop = threading.Event()

    def chat(i: int) -> None:
        rng = random.Random(f"{name}-{i}")
        n = 0
        while not stop.is_set():
            n += 1
            q = f"what does the note say about {rng.choice(VOCAB)} and {rng.choice(VOCAB)} ({name} {i} {n})?"
            try:
                t = time.perf_counter()
                answer = service.answerer.ask(q, session=f"{name}-{i}")
                latency = time.perf_counter() - t
                with lock:
                    answers.append(answer.id)
                    latencies.append(latency)
                rating = rng.choice([1, -1])
                service.feedback(answer.id, rating=rating)
                with lock:
                    feedback[answer.id] = {"rating": rating, "comment": None}
                comment = f"comment {n} from {name}-{i}"
                service.feedback(answer.id, comment=comment)
                with lock:
                    feedback[answer.id] = {"rating": rating, "comment": comment}
            except Exception as e:  # counted and reported: this benchmark measures errors
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")

    def watch() -> None:
        while not stop.is_set():
            try:
                version = service.store.snapshot().version
                seen.setdefault(version, time.time())
            except Exception as e:  # counted and reported
                with lock:
                    errors.append(f"watcher {type(e).__name__}: {e}")
            time.sleep(0.05)

    threads = [threading.Thread(target=chat, args=(i,)) for i in range(chats)] + [threading.Thread(target=watch)]
    for t in threads:
        t.start()
    print("ready", flush=True)
    while not os.path.exists(stop_file):
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join()
    print(json.dumps({"name": name, "answers": answers, "feedback": feedback, "errors": errors,
                      "latencies": latencies, "seen": seen}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicas", type=int, default=4)
    ap.add_argument("--chats", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=60, help="load time after the ingests start")
    ap.add_argument("--database-url", help="an empty database (default: a throwaway pgserver)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    import numpy as np

    from bench.pg_bench import pg_url, report, stop_servers
    from rag.log import PgAnswerLog
    from rag.store.postgres import PgStore

    tmp = Path(tempfile.mkdtemp(prefix="rag-pg-load-"))
    stack: list = []
    env = {k: v for k, v in os.environ.items() if k not in ("RAG_DATABASE_URL", "RAG_CRASH_AT")}
    procs: list[subprocess.Popen] = []
    try:
        url = pg_url(args, stack)
        docs = tmp / "docs"
        docs.mkdir()
        base = [note(docs / f"base-{i:03d}.md", i) for i in range(60)]
        subprocess.run([sys.executable, "-m", "ingest", *map(str, base), "--quiet", "--data-dir", str(tmp / "ing0")],
                       cwd=ROOT, env={**env, "RAG_DATABASE_URL": url}, check=True, capture_output=True)
        store = PgStore(url)
        stop_file = tmp / "stop"
        for r in range(args.replicas):
            procs.append(subprocess.Popen(
                [sys.executable, "-c", "import sys; sys.path.insert(0, '.'); from bench.pg_load import replica; "
                 "replica(*sys.argv[1:3], sys.argv[3], int(sys.argv[4]), sys.argv[5])",
                 url, str(tmp / f"replica-{r}"), f"r{r}", str(args.chats), str(stop_file)],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()[-2000:]
        print(f"{args.replicas} replicas x {args.chats} chats running", file=sys.stderr)
        time.sleep(5)
        committed: dict[int, float] = {store.version(): time.time()}
        sets = [[note(docs / f"new{j}-{i:02d}.md", 100 + 20 * j + i) for i in range(15)] for j in range(2)]
        ingests = [subprocess.Popen([sys.executable, "-m", "ingest", *map(str, s), "--quiet", "--json",
                                     "--data-dir", str(tmp / f"ing{j + 1}")], cwd=ROOT,
                                    env={**env, "RAG_DATABASE_URL": url}, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for j, s in enumerate(sets)]
        deadline = time.time() + args.seconds
        while time.time() < deadline or any(p.poll() is None for p in ingests):
            committed.setdefault(store.version(), time.time())
            time.sleep(0.01)
        ingest_reports = []
        for p in ingests:
            out, err = p.communicate()
            ingest_reports.append({"rc": p.returncode, "report": json.loads(out) if out.strip() else None,
                                   "stderr": err[-500:] if p.returncode else ""})
        time.sleep(3)  # the replicas' watchers catch up with the last publish
        stop_file.write_text("stop")
        results = []
        for p in procs:
            out, err = p.communicate(timeout=300)
            lines = [line for line in out.splitlines() if line.startswith("{")]
            results.append(json.loads(lines[-1]) if lines else {"name": "?", "answers": [], "feedback": {},
                                                                   "errors": [f"replica died: {err[-1000:]}"],
                                                                   "latencies": [], "seen": {}})
        procs.clear()
        log = PgAnswerLog(url)
        stored = {r["id"] for r in log._read().rows("SELECT id FROM answers")}
        missing_answers = missing_feedback = wrong_feedback = 0
        for r in results:
            missing_answers += sum(a not in stored for a in r["answers"])
            for answer_id, want in r["feedback"].items():
                state = log.feedback_state(answer_id)
                if state is None:
                    missing_feedback += 1
                elif state.get("rating") != want["rating"] or (want["comment"] and state.get("comment") != want["comment"]):
                    wrong_feedback += 1
        new_versions = sorted(v for v in committed if v > min(committed))
        def served(seen: dict, v: int) -> float | None:
            """When a replica first served v or a later version (two publishes close together
            may reach it as one)."""
            times = [t for ver, t in seen.items() if int(ver) >= v]
            return min(times) if times else None

        lags = {r["name"]: {v: (round(t - committed[v], 3) if (t := served(r["seen"], v)) is not None else None)
                            for v in new_versions} for r in results}
        all_lags = [x for per in lags.values() for x in per.values()]
        latencies = [x for r in results for x in r["latencies"]]
        out = {
            "replicas": args.replicas, "chats_per_replica": args.chats,
            "answers_acknowledged": sum(len(r["answers"]) for r in results),
            "feedback_acknowledged": sum(len(r["feedback"]) for r in results),
            "errors": sum(len(r["errors"]) for r in results) + sum(p["rc"] != 0 for p in ingest_reports),
            "error_samples": [e for r in results for e in r["errors"]][:10],
            "missing_answers": missing_answers, "missing_feedback": missing_feedback,
            "feedback_not_as_last_written": wrong_feedback,
            "ingests": [{"rc": p["rc"], "index_version": (p["report"] or {}).get("index_version"),
                         "stderr": p["stderr"]} for p in ingest_reports],
            "versions_committed": new_versions,
            "seconds_to_serve_new_version": lags,
            "max_seconds_to_serve": max((x for x in all_lags if x is not None), default=None),
            "never_served": sum(x is None for x in all_lags),
            "answer_latency_s": {"p50": round(float(np.percentile(latencies, 50)), 3) if latencies else None,
                                 "p95": round(float(np.percentile(latencies, 95)), 3) if latencies else None},
        }
    finally:
        for p in procs:
            p.kill()
            p.wait()
        stop_servers(stack)
        shutil.rmtree(tmp, ignore_errors=True)
    report(out, args.out)


if __name__ == "__main__":
    main()
