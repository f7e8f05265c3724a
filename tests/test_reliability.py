"""Reliability under concurrency, crashes, slow dependencies and hostile input.

Real components only: real SQLite files, FAISS and BM25 in temporary folders (and, for the
store tests, a real PostgreSQL database per test: tests/conftest.py::store_backend), the packaged
MiniLM model, real subprocesses (`python -m ingest`, writer scripts killed with SIGKILL) and
the real llama.cpp server (tests/llm_server.py) behind a fault proxy. Nothing is mocked.

Covered elsewhere, not repeated here: kill -9 at each step of an ingest (tests/test_crash.py);
LLM endpoint down, 429 with retries and a broken stream (tests/test_llm.py).
"""
from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, log_at, write_docs

pytestmark = pytest.mark.slow


def log_db(data_dir: Path) -> sqlite3.Connection:
    """A fresh, independent connection to the answer log (what a later process would see)."""
    return sqlite3.connect(Path(data_dir) / "log.sqlite", timeout=30)


def integrity(conn: sqlite3.Connection) -> str:
    return conn.execute("PRAGMA integrity_check").fetchone()[0]


def python(code: str, *args: str, **kw) -> subprocess.Popen:
    """A real Python subprocess running `code` from the repository root."""
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def finish(proc: subprocess.Popen, timeout_s: float = 180) -> tuple[str, str]:
    """The rest of a subprocess's output once it ends. (Not communicate(): it reads the pipe
    directly and would drop lines already buffered by an earlier readline().)"""
    timer = threading.Timer(timeout_s, proc.kill)
    timer.start()
    try:
        out, err = proc.stdout.read(), proc.stderr.read()
        proc.wait()
    finally:
        timer.cancel()
    return out, err


# ---------------------------------------------------------------------------------------------
# 1. Twenty chat sessions sharing one Service while `python -m ingest` adds documents
# ---------------------------------------------------------------------------------------------
N_SESSIONS = 20
MIN_QUESTIONS, MAX_QUESTIONS = 3, 60  # each session asks at least 3, and keeps asking until after the publish
QUESTIONS = [
    "What is base 1 about?",
    "Tell me about the river valley and the mountain harbour.",
    "Which documents mention copper engines?",
    "What about the glacier and the canyon?",
    "Where is the lantern kept?",
    "What does topic2 cover?",
    "How does it describe the winter orbit?",
]


def test_twenty_sessions_share_one_service_while_an_ingest_publishes(tmp_path, embedder, store_backend):
    from ingest.pipeline import ingest_paths
    from rag.config import Settings
    from rag.service import Service

    data = tmp_path / "data"
    settings = Settings.load(data_dir=data, llm_base_url="")
    base_docs = write_docs(tmp_path / "base", 4, prefix="base")
    base = ingest_paths(base_docs, settings, embedder=embedder)
    assert not base.failed
    v0 = base.index_version
    fresh = write_docs(tmp_path / "fresh", 6, words=150, prefix="fresh")

    svc = Service(settings)  # one per process, as pages/common.py caches it; not warmed up on purpose
    ingest = subprocess.Popen([sys.executable, "-m", "ingest", str(tmp_path / "fresh"), "--data-dir", str(data),
                               "--json", "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    ingest_done = threading.Event()
    ingest_out: dict = {}

    def wait_ingest():
        ingest_out["stdout"], ingest_out["stderr"] = ingest.communicate(timeout=240)
        ingest_done.set()

    watcher = threading.Thread(target=wait_ingest, daemon=True)
    watcher.start()

    start = threading.Barrier(N_SESSIONS)
    deadline = time.monotonic() + 200
    results: list[dict] = []  # one per answer: id, feedback id, comment, trace version, ...
    errors: list[BaseException] = []
    answerers: set = set()  # the Answerer (models, index snapshot, LLM state) each session got
    lock = threading.Lock()

    def session(n: int) -> None:
        rng = random.Random(n)
        history: list[str] = []
        after_publish = 0
        try:
            start.wait(60)
            for i in range(MAX_QUESTIONS):
                saw_done = ingest_done.is_set()
                question = QUESTIONS[(n + i) % len(QUESTIONS)]
                answerers.add(svc.answerer)
                stream = svc.ask(question, history=history[-4:], session=f"session-{n}")
                text = "".join(stream)  # consumed like the chat page does
                answer = stream.answer
                assert answer is not None and answer.id and text
                history.append(question)
                comment = f"session-{n} answer-{i}"
                fid = svc.feedback(answer.id, rating=1 if i % 2 else -1, comment=comment)
                with lock:
                    results.append({"answer": answer.id, "feedback": fid, "comment": comment,
                                    "version": answer.trace.get("index_version"),
                                    "sources": {p.source for p in answer.passages}, "mode": answer.mode})
                after_publish += saw_done
                time.sleep(rng.uniform(0.1, 0.4))  # a person reads the answer before asking again
                # Keep chatting through the whole ingest, and ask once more after its publish.
                if i + 1 >= MIN_QUESTIONS and after_publish >= 1 or time.monotonic() > deadline:
                    break
        except BaseException as e:  # noqa: BLE001 - every failure is reported below
            with lock:
                errors.append(e)

    threads = [threading.Thread(target=session, args=(n,)) for n in range(N_SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    watcher.join(10)
    assert not any(t.is_alive() for t in threads), "a chat session hung"
    assert not errors, f"{len(errors)} session(s) failed; first: {errors[0]!r}"
    assert len(answerers) == 1, f"{len(answerers)} Answerers were built for one Service: sessions must share one"
    assert ingest.returncode == 0, ingest_out.get("stderr")
    v1 = json.loads(ingest_out["stdout"])["index_version"]
    assert v1 == v0 + 1

    # Nothing lost: every answer and every feedback row the sessions made is in the log (read
    # through a fresh log object: its own connections, as another process would), and each
    # feedback id names the row that was written for that answer.
    assert len(results) >= N_SESSIONS * MIN_QUESTIONS
    assert len({r["answer"] for r in results}) == len({r["feedback"] for r in results}) == len(results)
    fresh_log = log_at(data)
    logged = fresh_log.answers(100_000)
    assert len(logged) == len(results)
    for r in results:
        assert [(h["id"], h["comment"]) for h in fresh_log.feedback_for(r["answer"])] == [
            (r["feedback"], r["comment"])], r
    logged_versions = {row["id"]: row["index_version"] for row in logged}
    if store_backend == "local":
        with log_db(data) as conn:
            assert integrity(conn) == "ok"

    # Every answer was made on a version that existed: the old one or the one the ingest published.
    versions = {r["version"] for r in results}
    assert versions <= {v0, v1}, versions
    assert all(logged_versions[r["answer"]] == r["version"] for r in results)
    assert v0 in versions, "no answer was made while the ingest ran: the test did not overlap them"
    assert v1 in versions, f"no answer saw the newly published version ({len(results)} answers)"
    known = {str(p) for p in base_docs + fresh}
    for r in results:
        assert r["mode"] == "extractive" and r["sources"] <= known

    # After the ingest: the index is consistent and the new documents are searchable.
    store = svc.store
    assert store.check() == []
    assert store.version() == v1 and len(store.documents()) == 4 + len(fresh)
    for i, path in enumerate(fresh):
        hits = svc.answerer.retriever.search(f"fresh {i} about topic{i}", k=3).hits
        assert str(path) in {h.source for h in hits}, f"{path.name} is not found after the ingest"


# ---------------------------------------------------------------------------------------------
# 2. kill -9 while feedback is being written
# ---------------------------------------------------------------------------------------------
FEEDBACK_WRITER = r"""
import sys
from rag.config import Settings
from rag.log import open_log

log = open_log(Settings.load(data_dir=sys.argv[1]))  # RAG_DATABASE_URL, when set, names the log
name = sys.argv[2]
if len(sys.argv) > 3:
    print("started", flush=True)
    sys.stdin.readline()  # wait for "go", so that all writers start together
aid = log.record({"session": name, "question": "q from " + name, "answer": "a", "mode": "extractive",
                  "abstained": 0, "cached": 0, "citations": [], "passages": [], "trace": {}})
print("ready", aid, flush=True)
for i in range(int(sys.argv[3]) if len(sys.argv) > 3 else 10**9):
    fid = log.feedback(aid, 1 if i % 2 else -1, f"{name}-{i}", "correction " * (i % 40))
    print(fid, flush=True)  # printed only once the row is committed
"""


def committed_ids(lines: list[str]) -> list[int]:
    """The ids a writer printed; a line cut short by the kill (no newline) does not count."""
    return [int(x) for x in lines if x.endswith("\n") and x.strip().isdigit()]


def test_kill_9_during_feedback_writes_loses_no_committed_row(tmp_path, store_backend):
    data = tmp_path / "data"
    rng = random.Random(7)
    printed: list[int] = []
    rounds = 4
    for r in range(rounds):
        proc = python(FEEDBACK_WRITER, str(data), f"victim{r}")
        ready = proc.stdout.readline()
        assert ready.startswith("ready"), proc.stderr.read()
        target = rng.randint(30, 300)
        lines = []
        while len(lines) < target:
            line = proc.stdout.readline()
            assert line, f"writer died on its own: {proc.stderr.read()}"
            lines.append(line)
        time.sleep(rng.random() * 0.05)  # land somewhere inside the next write
        proc.send_signal(signal.SIGKILL)
        rest, _ = finish(proc, 30)
        assert proc.returncode == -signal.SIGKILL
        ids = committed_ids(lines + rest.splitlines(keepends=True))
        assert len(ids) >= target
        printed += ids

    if store_backend == "local":
        with log_db(data) as conn:
            assert integrity(conn) == "ok"
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    log = log_at(data)  # the next process
    in_db = {h["id"] for a in log.answers(10_000) for h in log.feedback_for(a["id"])}
    missing = set(printed) - in_db
    assert not missing, f"{len(missing)} committed feedback rows vanished after kill -9"
    # At most the one row per kill that was committed but not yet printed is extra.
    assert len(in_db) - len(printed) <= rounds
    # The log is still writable by the next process: nothing stays locked after the kills.
    aid = log.record({"question": "after", "answer": "a", "mode": "extractive", "abstained": 0, "cached": 0})
    assert log.feedback(aid, 1, "after the crashes") > max(in_db)


# ---------------------------------------------------------------------------------------------
# 5. SQLite busy/locked: several processes writing feedback at once
# ---------------------------------------------------------------------------------------------
LOCK_HOLDER = r"""
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")  # the write lock, as a long export or a slow writer would hold it
conn.execute("INSERT INTO cache (key, created_at, index_version, answer) VALUES ('held', 'now', 0, '{}')")
print("locked", flush=True)
sys.stdin.readline()
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
print("released", flush=True)
"""


def test_concurrent_writer_processes_lose_no_feedback(tmp_path, monkeypatch):
    """SQLite's own write lock (a PostgreSQL log has none: see tests/test_log.py)."""
    from rag.log import AnswerLog

    monkeypatch.delenv("RAG_DATABASE_URL", raising=False)  # the writers must open log.sqlite
    data = tmp_path / "data"
    AnswerLog(data).db  # the schema exists before the race starts
    n_writers, rows_each, hold_s = 6, 120, 3.0
    holder = python(LOCK_HOLDER, str(data / "log.sqlite"), str(hold_s), stdin=subprocess.PIPE)
    assert holder.stdout.readline().strip() == "locked", holder.stderr.read()
    writers = [python(FEEDBACK_WRITER, str(data), f"w{n}", str(rows_each), stdin=subprocess.PIPE)
               for n in range(n_writers)]
    for w in writers:
        assert w.stdout.readline().strip() == "started", w.stderr.read()
    # Go: the holder keeps the write lock hold_s more seconds while every writer starts
    # writing; their first rows must wait for it, not fail, and no row may be lost.
    t0 = time.monotonic()
    for p in [holder, *writers]:
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = [finish(w) for w in writers]
    holder_out, holder_err = finish(holder, 60)
    elapsed = time.monotonic() - t0
    assert holder.returncode == 0 and "released" in holder_out, holder_err
    for w, (out, err) in zip(writers, outs):
        assert w.returncode == 0, err
    assert elapsed >= hold_s * 0.9, "the writers did not contend with the lock holder"

    printed = [committed_ids(out.splitlines(keepends=True)) for out, _ in outs]
    assert all(len(ids) == rows_each for ids in printed)
    flat = [i for ids in printed for i in ids]
    assert len(set(flat)) == len(flat) == n_writers * rows_each, "two writers were given the same id"
    with log_db(data) as conn:
        assert integrity(conn) == "ok"
        assert conn.execute("SELECT count(*) FROM answers").fetchone()[0] == n_writers
        assert conn.execute("SELECT count(*) FROM feedback").fetchone()[0] == n_writers * rows_each
        per_writer = dict(conn.execute(
            "SELECT substr(comment, 1, instr(comment, '-') - 1), count(*) FROM feedback GROUP BY 1"))
        assert per_writer == {f"w{n}": rows_each for n in range(n_writers)}
        in_db = {row[0] for row in conn.execute("SELECT id FROM feedback")}
        assert set(flat) == in_db
        assert conn.execute("SELECT count(*) FROM cache WHERE key='held'").fetchone()[0] == 1


# ---------------------------------------------------------------------------------------------
# 3. A slow LLM endpoint: the answer falls back within a bounded time
# ---------------------------------------------------------------------------------------------
LLM_TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def plants_dir(plants_index):
    return plants_index


def slow_service(data_dir, proxy):
    from rag.config import Settings
    from rag.service import Service

    return Service(Settings.load(data_dir=data_dir, llm_base_url=proxy.base_url, llm_model="smollm2",
                                 llm_timeout_s=LLM_TIMEOUT_S, llm_max_retries=0, llm_max_tokens=16,
                                 answer_k=3, answer_cache=False))


QUESTION = "How often does the office ficus need watering?"


def test_slow_llm_times_out_and_falls_back_to_the_extractive_answer(llama, plants_dir):
    from tests.llm_server import FaultProxy

    proxy = FaultProxy(llama.base_url, fail=0, delay_s=LLM_TIMEOUT_S + 1.5)
    try:
        svc = slow_service(plants_dir, proxy)
        svc.answerer.retriever.search("warm up", k=1)  # model load is not what is timed here
        t0 = time.monotonic()
        a = svc.answerer.ask(QUESTION)
        elapsed = time.monotonic() - t0
        assert a.mode == "extractive" and not a.abstained and a.citations
        assert any("did not answer within 2 s" in n for n in a.notices), a.notices
        assert LLM_TIMEOUT_S <= elapsed < LLM_TIMEOUT_S + 6, f"took {elapsed:.1f} s"
        assert proxy.requests == 1, "max_retries=0 must not retry"
        # The fallback is logged with its notice, and not cached as if it were the LLM's answer.
        row = svc.log.get(a.id)
        assert row["mode"] == "extractive" and "did not answer within" in row["notice"]
        # Later questions during the outage do not each wait for the timeout again.
        t0 = time.monotonic()
        b = svc.answerer.ask("When does the office ficus get water?")
        assert time.monotonic() - t0 < LLM_TIMEOUT_S and b.mode == "extractive"
        assert any("did not answer within" in n and "not retried" in n for n in b.notices), b.notices
        assert proxy.requests == 1
        assert any("did not answer within" in n for n in svc.status()["notices"])
        # The client really hung up: the proxy finds the connection closed when its delay ends.
        deadline = time.monotonic() + 30
        while not (proxy.abandoned or proxy.statuses) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proxy.abandoned == 1 and proxy.statuses == []
    finally:
        proxy.close()


def test_llm_stream_that_stalls_midway_falls_back_within_the_timeout(llama, plants_dir):
    from tests.llm_server import FaultProxy

    proxy = FaultProxy(llama.base_url, fail=0, stall_s=LLM_TIMEOUT_S + 6)
    try:
        svc = slow_service(plants_dir, proxy)
        svc.answerer.retriever.search("warm up", k=1)
        t0 = time.monotonic()
        stream = svc.ask(QUESTION)
        deltas = list(stream)
        elapsed = time.monotonic() - t0
        a = stream.answer
        assert proxy.requests == 1 and proxy.statuses == [200], proxy.errors
        assert a.trace["llm_raw"], "the stream must have started before it stalled"
        assert deltas[0] == a.trace["llm_raw"][:len(deltas[0])]  # the user saw it arrive...
        assert a.mode == "extractive" and a.citations  # ...and then the extractive answer replaced it
        assert any("did not answer within 2 s" in n for n in a.notices), a.notices
        # Bounded: upstream's own generation time, then at most the timeout, then the fallback.
        assert elapsed < proxy.upstream_s[0] + LLM_TIMEOUT_S + 6, f"took {elapsed:.1f} s"
    finally:
        proxy.close()


# ---------------------------------------------------------------------------------------------
# 4. Hostile uploads through Service.ingest_uploads
#    (extends tests/test_app.py::test_service_refuses_hostile_upload_names_and_oversized_files)
# ---------------------------------------------------------------------------------------------
SCRIPT_HTML = b"""<!doctype html>
<html><head><title>Garden notes</title>
<script>var token = 'SCRIPTHEAD exfiltrate document.cookie';</script>
<style>body { background: url('STYLEPAYLOAD'); }</style></head>
<body>
<h1>Garden notes</h1>
<p>Tulips bloom in April when the soil warms up.</p>
<SCRIPT type="text/javascript">alert("SCRIPTUPPER")</SCRIPT>
<p onclick="alert('ONCLICKPAYLOAD')">Daffodils prefer partial shade.</p>
<img src="x" onerror="alert('ONERRORPAYLOAD')">
<svg><script>alert('SCRIPTSVG')</script></svg>
<iframe src="javascript:alert('IFRAMEPAYLOAD')">IFRAMETEXT</iframe>
<noscript>NOSCRIPTTEXT</noscript>
<p>Water the roses every Thursday morning.</p>
<script>document.write('<p>SCRIPTWRITE</p>')</script>
</body></html>
"""
# Valid HTML5 may leave out </head>: the body must still be read, and the head's script not.
NO_HEAD_END = (b"<!doctype html><html><head><title>Pond</title><script>alert('NOHEADSCRIPT')</script>"
               b"<body><h1>Pond</h1><p>Koi need shade over the pond in July.</p></body></html>")
PAYLOADS = ["NOHEADSCRIPT", "SCRIPTHEAD", "STYLEPAYLOAD", "SCRIPTUPPER", "ONCLICKPAYLOAD", "ONERRORPAYLOAD",
            "SCRIPTSVG", "IFRAMEPAYLOAD", "IFRAMETEXT", "SCRIPTWRITE", "alert", "cookie", "javascript"]


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


@pytest.mark.usefixtures("store_backend")
def test_hostile_uploads_are_refused_or_neutralised_and_the_index_stays_intact(tmp_path, embedder):
    from ingest.pipeline import ingest_paths
    from rag.config import Settings
    from rag.service import Service

    data = tmp_path / "data"
    settings = Settings.load(data_dir=data, llm_base_url="", max_file_mb=0.01)  # about 10 KB
    first = ingest_paths(write_docs(tmp_path / "docs", 1, prefix="kept"), settings, embedder=embedder)
    assert not first.failed
    svc = Service(settings)
    kept = svc.documents()
    v0 = svc.store.version()
    outside_before = files_under(tmp_path) - files_under(data)
    long_name = "quarterly-" + "x" * 300 + ".md"

    uploads = [
        # names that try to leave the uploads folder or carry control characters
        ("../../../../escape-up.md", b"# Up\n\nA note about ferns growing under the stairs."),
        (str(tmp_path / "absolute.md"), b"# Abs\n\nA note about cacti on the window sill."),
        ("C:\\Windows\\System32\\drivers.md", b"# Win\n\nA note about orchids in the bathroom."),
        ("..\uff0f..\uff0ffullwidth.md", b"# Wide\n\nA note about basil in the kitchen."),
        ("nul\x00byte\n.md", b"# Nul\n\nA note about mint spreading everywhere."),
        ("..", b"x"), ("/", b"x"), ("   ", b"x"),
        (long_name, b"# Long\n\nA note about ivy climbing the north wall."),
        # contents that must be refused
        ("empty.md", b""),
        ("huge.md", b"# Huge\n\n" + b"word " * 4000),
        ("report.pdf", b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 200),   # a .docx named .pdf
        ("scan.pdf", b"\x89PNG\r\n\x1a\n" + b"\x00" * 200),              # a PNG named .pdf
        ("readme.md", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + b"0" * 100),      # a PDF named .md
        ("tool.txt", b"\x7fELF\x02\x01\x01" + b"\x00" * 200),              # a program named .txt
        # HTML whose scripts must never reach the index
        ("garden.html", SCRIPT_HTML),
        ("pond.html", NO_HEAD_END),
    ]
    out = svc.ingest_uploads(uploads)
    rows = out["files"]
    by_file = {r["file"]: r for r in rows}

    # Path names: reduced to a plain name inside DATA_DIR/uploads, never written elsewhere.
    for name in ["escape-up.md", "absolute.md", "drivers.md", "fullwidth.md"]:
        assert by_file[name]["status"] == "indexed", by_file.get(name)
    nul = [r for r in rows if r["file"].startswith("nul")]
    assert len(nul) == 1 and nul[0]["status"] == "indexed" and "\x00" not in nul[0]["file"]
    assert "\n" not in nul[0]["file"]
    assert [r["reason"] for r in rows].count("bad_name") == 3
    for r in rows:
        if r["reason"] == "bad_name":
            assert r["message"] and "rename the file" in r["message"]
    assert files_under(tmp_path) - files_under(data) == outside_before, "an upload was written outside DATA_DIR"
    for p in files_under(data / "uploads"):
        assert p.parent == data / "uploads" and not p.is_symlink()

    # A long name is shortened but keeps its extension, so the file is still read as Markdown.
    longs = [r for r in rows if r["file"].startswith("quarterly-")]
    assert len(longs) == 1 and longs[0]["status"] == "indexed", longs
    assert longs[0]["file"].endswith(".md") and len(longs[0]["file"]) <= 150

    # Contents: each refused with the file's name and a reason the person can act on.
    expected = {"empty.md": "empty", "huge.md": "too_large", "report.pdf": "mislabelled_type",
                "scan.pdf": "mislabelled_type", "readme.md": "mislabelled_type", "tool.txt": "mislabelled_type"}
    for name, reason in expected.items():
        r = by_file[name]
        assert r["status"] == "error" and r["reason"] == reason and r["message"], r
    assert "limit" in by_file["huge.md"]["message"]
    assert "empty" in by_file["empty.md"]["message"]
    for name in ["empty.md", "report.pdf", "scan.pdf", "readme.md", "tool.txt"]:
        assert name in by_file[name]["message"], by_file[name]
    assert "ZIP" in by_file["report.pdf"]["message"] and "PNG" in by_file["scan.pdf"]["message"]
    assert "PDF" in by_file["readme.md"]["message"] and "ELF" in by_file["tool.txt"]["message"]
    assert not (data / "uploads" / "huge.md").exists(), "an over-limit upload must not even be saved"

    # HTML: the visible text is indexed, nothing from scripts, styles, handlers or iframes is.
    store = svc.store
    for name, visible in [("garden.html", ["Tulips bloom in April", "roses every Thursday"]),
                          ("pond.html", ["Koi need shade over the pond"])]:
        assert by_file[name]["status"] == "indexed", by_file[name]
        doc = next(d for d in svc.documents() if d["source"].endswith(name))
        text = " ".join(c["text"] for c in svc.chunks(doc["id"]))
        assert all(v in text for v in visible), text
        stored = " ".join(
            [r["t"] for r in store.query("SELECT text || ' ' || terms || ' ' || coalesce(heading, '') AS t "
                                         "FROM chunks WHERE doc_id = ?", (doc["id"],))]
            + [r["text"] for r in store.query("SELECT text FROM pages WHERE doc_id = ?", (doc["id"],))]
            + [doc["title"]])
        for payload in PAYLOADS:
            assert payload.lower() not in stored.lower(), f"{payload!r} from a script in {name} reached the index"
    hits = svc.answerer.retriever.search("When do tulips bloom?", k=3).hits
    assert hits and hits[0].source.endswith("garden.html")

    # What was indexed before is untouched and still found; the index is consistent.
    assert svc.store.check() == []
    assert svc.store.version() == v0 + 1
    now = {d["id"]: d for d in svc.documents()}
    for d in kept:
        assert d["id"] in now and now[d["id"]]["n_chunks"] == d["n_chunks"]
    hits = svc.answerer.retriever.search("kept 0 about topic0", k=3).hits
    assert any(h.source == kept[0]["source"] for h in hits)
    indexed = {r["file"] for r in rows if r["status"] == "indexed"}
    assert len(svc.documents()) == len(kept) + len(indexed)
