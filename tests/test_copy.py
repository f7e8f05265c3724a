"""Moving a library between the local store and PostgreSQL (`python -m ingest --copy-to/--copy-from`),
against the real pgserver, real SQLite/FAISS/bm25s and the real packaged model."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from ingest.cli import main as ingest_main
from ingest.pipeline import ingest_paths
from rag.config import Settings
from rag.log import AnswerLog, PgAnswerLog
from rag.search import search
from rag.store import LocalStore
from tests.conftest import ROOT, SAMPLES, write_docs

QUERIES = ["how do I remove a document from every index", "river valley engine",
           "glacier compass lantern", "what happens when a citation cannot be verified"]


@pytest.fixture
def pg_url(postgres_server, monkeypatch):
    """A fresh, empty database on the session's PostgreSQL (RAG_DATABASE_URL stays unset: the
    copy names its target itself)."""
    import psycopg

    monkeypatch.delenv("RAG_DATABASE_URL", raising=False)
    name = f"copy_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.get_uri(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield postgres_server.get_uri(name)
    with psycopg.connect(postgres_server.get_uri(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def library(tmp_path_factory, embedder):
    """A local library: the sample guide and eight generated notes."""
    docs = tmp_path_factory.mktemp("docs")
    paths = [SAMPLES / "user-guide.md", *write_docs(docs, 8)]
    data = tmp_path_factory.mktemp("data")
    report = ingest_paths(paths, Settings.load(data_dir=data, database_url=""), embedder=embedder)
    assert not report.failed
    log = AnswerLog(data)  # and an answer log with feedback and conversations
    for i in range(3):
        aid = log.record({"question": f"question {i}", "answer": f"answer {i}", "mode": "extractive",
                          "index_version": 1, "citations": [], "passages": [], "trace": {"i": i}})
        log.feedback(aid, rating=1 if i % 2 else -1)
        log.feedback(aid, comment=f"comment {i}")
        cid = log.new_conversation("browser:abc")
        log.add_turn(cid, "browser:abc", f"question {i}", {"text": f"answer {i}", "answer_id": aid})
    return data


def log_state(log) -> dict:
    """Everything a person sees of a log: answers, feedback state and history, conversations."""
    answers = sorted(log.answers(), key=lambda a: a["id"])
    return {"answers": answers,
            "feedback": {a["id"]: (log.feedback_state(a["id"]), log.feedback_for(a["id"])) for a in answers},
            "conversations": [(c, log.conversation(c["id"], "browser:abc"))
                              for c in log.conversations("browser:abc")]}


def run_cli(*args: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
    """The CLI in its own process; it must not load the embedding model (nothing is re-embedded)."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAG_DATABASE_URL", "RAG_CRASH_AT")}
    if crash_at:
        env["RAG_CRASH_AT"] = crash_at
    code = ("import sys; from ingest.cli import main; rc = main(sys.argv[1:]); "
            "loaded = [m for m in ('torch', 'sentence_transformers') if m in sys.modules]; "
            "assert not loaded, f'the copy loaded {loaded}'; sys.exit(rc)")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def same_hits(a_store, b_store, embedder) -> None:
    """The full default funnel gives the same passages, in the same order, with the same scores."""
    for q in QUERIES:
        a, b = search(a_store, embedder, q, k=8), search(b_store, embedder, q, k=8)
        assert [h.chunk.id for h in a] == [h.chunk.id for h in b], q
        assert [h.scores["fused"] for h in a] == pytest.approx([h.scores["fused"] for h in b], abs=1e-5), q
        assert [h.chunk.text for h in a] == [h.chunk.text for h in b]


def test_copy_to_postgres_and_back(library, pg_url, tmp_path, embedder):
    from rag.store.postgres import PgStore

    done = run_cli("--copy-to", pg_url, "--data-dir", str(library), "--json", "--check-queries", "20")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    local = LocalStore(library)
    stats = local.stats()
    assert report["ok"] and report["check"]["problems"] == []
    assert (report["documents"], report["chunks"]) == (stats["documents"], stats["chunks"])
    assert report["check"]["digest_equal"] and report["check"]["dense_identical"] == report["check"]["queries"]
    pg = PgStore(pg_url)
    assert pg.check() == []
    assert pg.version() == 1
    assert [d["id"] for d in pg.documents()] == [d["id"] for d in local.documents()]
    assert pg.query("SELECT count(*) AS n FROM ingest_events")[0]["n"] == \
        local.query("SELECT count(*) AS n FROM ingest_events")[0]["n"]
    same_hits(local, pg, embedder)
    assert report["answer_log"] == {"answers": 3, "feedback": 6, "feedback_state": 3, "conversations": 3,
                                    "turns": 3}
    pg_log = PgAnswerLog(pg_url)
    assert log_state(pg_log) == log_state(AnswerLog(library))
    answer_id = pg_log.answers()[0]["id"]
    pg_log.feedback(answer_id, rating=1)  # new rows after the copied ones: no id clash
    assert pg_log.feedback_for(answer_id)[-1]["rating"] == 1

    # The copy is a library like any other: a later ingest into it gets fresh vids, no clash.
    extra = write_docs(tmp_path / "more", 1, prefix="extra")
    max_vid = int(local.live_vids().max())
    report2 = ingest_paths(extra, Settings.load(data_dir=tmp_path / "replica", database_url=pg_url),
                           embedder=embedder)
    assert not report2.failed and report2.index_version == 2
    assert int(pg.live_vids().max()) > max_vid and pg.check() == []

    # And the way back, into a new data dir: the same library, FAISS and BM25 rebuilt from it.
    back = tmp_path / "back"
    done = run_cli("--copy-from", pg_url, "--data-dir", str(back), "--quiet")
    assert done.returncode == 0, done.stderr + done.stdout
    assert "identical search results on" in done.stdout
    returned = LocalStore(back)
    assert returned.check() == []
    assert returned.stats()["documents"] == stats["documents"] + 1
    pg.snapshot()  # `pg` still holds version 1: its searches alone would use it while 2 loads
    same_hits(pg, returned, embedder)
    assert log_state(AnswerLog(back)) == log_state(pg_log)


def test_copy_refuses_what_it_cannot_do(library, pg_url, tmp_path, capsys):
    assert ingest_main(["--copy-to", "mysql://somewhere/db", "--data-dir", str(library)]) == 2
    assert "takes a PostgreSQL URL" in capsys.readouterr().err
    bad = pg_url.replace("/copy_", "/no_such_db_", 1)
    assert ingest_main(["--copy-to", bad, "--data-dir", str(library)]) == 2
    assert "cannot connect to the database" in capsys.readouterr().err
    assert ingest_main(["--copy-to", pg_url, "--data-dir", str(tmp_path / "empty")]) == 2
    assert "nothing to copy" in capsys.readouterr().err
    assert ingest_main(["--copy-to", pg_url, "--data-dir", str(library), "--quiet"]) == 0
    capsys.readouterr()
    # A second copy into the same database would merge two libraries: refused, with what to do.
    assert ingest_main(["--copy-to", pg_url, "--data-dir", str(library), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "already holds a library" in err and "CREATE DATABASE" in err
    # The way back into a data dir that has a library is refused too.
    assert ingest_main(["--copy-from", pg_url, "--data-dir", str(library), "--quiet"]) == 2
    assert "already holds a library" in capsys.readouterr().err


@pytest.mark.parametrize("point", ["index_written", "before_commit"])
def test_copy_killed_before_publish_leaves_target_empty_and_rerun_completes(library, pg_url, point):
    from rag.store.postgres import PgStore

    killed = run_cli("--copy-to", pg_url, "--data-dir", str(library), "--quiet", crash_at=point)
    assert killed.returncode == -9, killed.stderr
    pg = PgStore(pg_url)
    assert pg.version() == 0 and pg.documents() == []  # nothing half-published
    assert pg.documents(status="pending")  # the rows of the dead copy, never live
    done = run_cli("--copy-to", pg_url, "--data-dir", str(library), "--quiet")
    assert done.returncode == 0, done.stderr + done.stdout
    assert pg.version() == 1 and pg.check() == [] and pg.documents(status="pending") == []
    assert len(pg.documents()) == len(LocalStore(library).documents())
