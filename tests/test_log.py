"""The answer log on a real SQLite file and on a real PostgreSQL database (tests/conftest.py::
store_backend): feedback state + history, the schema-1 migration (SQLite only: PostgreSQL logs
start at schema 2), conversations that survive a restart and stay with their owner, and writer
processes that lose no row."""
from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from rag.errors import RagError
from rag.log import AnswerLog, LogRules
from tests.conftest import ROOT, log_at


def _answer(log: LogRules, question: str = "q?") -> str:
    return log.record({"question": question, "answer": "a", "mode": "extractive", "abstained": 0,
                       "citations": [], "passages": [], "trace": {}})


@pytest.mark.usefixtures("store_backend")
def test_a_comment_keeps_the_rating_and_each_change_is_in_the_history(tmp_path):
    log = log_at(tmp_path)
    aid = _answer(log)
    log.feedback(aid, rating=-1)
    log.feedback(aid, comment="wrong quarter", correction="$436 million")
    state = log.feedback_state(aid)
    assert (state["rating"], state["comment"], state["correction"]) == (-1, "wrong quarter", "$436 million")
    row = next(r for r in log.answers() if r["id"] == aid)
    assert row["rating"] == -1 and row["comment"] == "wrong quarter"
    log.feedback(aid, rating=None)  # the thumb taken back; the comment stays
    assert log.feedback_state(aid)["rating"] is None and log.feedback_state(aid)["comment"] == "wrong quarter"
    history = log.feedback_for(aid)
    assert [(h["rating"], h["comment"]) for h in history] == [
        (-1, None), (-1, "wrong quarter"), (None, "wrong quarter")]
    with pytest.raises(RagError, match="rating must be"):
        log.feedback(aid, rating=5)


def test_schema_1_logs_are_migrated_to_one_state_per_answer(tmp_path):
    log = AnswerLog(tmp_path)
    a, b = _answer(log, "a?"), _answer(log, "b?")
    # Rows as schema 1 wrote them: each holds only what that action gave.
    conn = sqlite3.connect(tmp_path / "log.sqlite")
    conn.executemany("INSERT INTO feedback (answer_id, created_at, rating, comment, correction) VALUES (?,?,?,?,?)",
                     [(a, "t1", -1, None, None), (a, "t2", None, "late comment", "fix"),
                      (b, "t3", 1, None, None), (b, "t4", None, None, None)])
    conn.execute("DELETE FROM feedback_state")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    fresh = AnswerLog(tmp_path)
    sa, sb = fresh.feedback_state(a), fresh.feedback_state(b)
    assert (sa["rating"], sa["comment"], sa["correction"]) == (-1, "late comment", "fix")
    assert sb["rating"] is None  # a row with nothing in it was the thumb taken back


@pytest.mark.usefixtures("store_backend")
def test_conversations_survive_a_restart_and_stay_with_their_owner(tmp_path):
    log = log_at(tmp_path)
    cid = log.new_conversation("browser:one")
    aid = _answer(log, "What were net sales in Q4?")
    log.add_turn(cid, "browser:one", "What were net sales in Q4?", {"id": aid, "answer": "$2.6 billion"})
    log.add_turn(cid, "browser:one", "And a year earlier?", {"id": None, "answer": "$2.3 billion"})
    other = log.new_conversation("browser:two")

    again = log_at(tmp_path)  # a restart: a new process opens the same log
    mine = again.conversations("browser:one")
    assert [(c["id"], c["title"], c["turns"]) for c in mine] == [(cid, "What were net sales in Q4?", 2)]
    conv = again.conversation(cid, "browser:one")
    assert [t["question"] for t in conv["turns"]] == ["What were net sales in Q4?", "And a year earlier?"]
    assert conv["turns"][0]["answer"]["answer"] == "$2.6 billion"
    assert again.conversation(cid, "browser:two") is None  # not theirs
    assert [c["id"] for c in again.conversations("browser:two")] == [other]

    again.rename_conversation(cid, "browser:one", "  Ulta   Q4 ")
    assert again.conversations("browser:one")[0]["title"] == "Ulta Q4"
    with pytest.raises(RagError, match="needs a name"):
        again.rename_conversation(cid, "browser:one", "   ")
    assert not again.delete_conversation(cid, "browser:two")
    assert again.delete_conversation(cid, "browser:one")
    assert again.conversations("browser:one") == [] and again.get(aid) is not None  # the log keeps the answer
    with pytest.raises(RagError, match="no longer exists"):
        again.add_turn(cid, "browser:one", "more?", {"id": None})


def test_the_log_backend_under_test_is_the_one_named(tmp_path, store_backend):
    """Guards the parametrization: RAG_DATABASE_URL must really move the log."""
    log = log_at(tmp_path)
    assert type(log).__name__ == {"local": "AnswerLog", "postgres": "PgAnswerLog"}[store_backend]
    _answer(log)
    assert (tmp_path / "log.sqlite").exists() == (store_backend == "local")


@pytest.mark.parametrize("store_backend", ["postgres"], indirect=True)
def test_a_postgres_log_of_another_schema_version_is_refused(tmp_path, store_backend):
    """Like the library's catalog, the PostgreSQL log says its schema version (log_meta). A log
    made before it did is schema 2 (where PostgreSQL logs started) and keeps its rows."""
    from rag.log import SCHEMA_VERSION

    log = log_at(tmp_path)
    aid = _answer(log)
    log.conn.execute("DROP TABLE log_meta")  # as a log from before the marker
    again = log_at(tmp_path)
    assert again.get(aid)["question"] == "q?"
    assert again.conn.execute("SELECT value FROM log_meta").fetchone()[0] == str(SCHEMA_VERSION)
    again.conn.execute("UPDATE log_meta SET value = '3' WHERE key = 'schema_version'")  # a newer app's
    with pytest.raises(RagError, match=f"schema version 3; this version of the app reads {SCHEMA_VERSION}"):
        log_at(tmp_path)


WRITER = r"""
import sys
from rag.config import Settings
from rag.log import open_log

log = open_log(Settings.load(data_dir=sys.argv[1]))  # RAG_DATABASE_URL, when set, names the log
name, shared, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
print("started", flush=True)
sys.stdin.readline()  # "go": every writer starts together
for i in range(n):
    aid = log.record({"session": name, "question": f"q {i}", "answer": "a", "mode": "extractive",
                      "abstained": False, "cached": 0, "citations": [], "passages": [], "trace": {}})
    fid = log.feedback(aid, rating=1, comment=f"{name}-{i}")
    field = {"comment": f"{name}-{i}"} if i % 2 else {"correction": f"{name}-{i}"}
    sid = log.feedback(shared, **field)  # every writer changes the same answer's feedback
    print(aid, fid, sid, flush=True)  # printed only once all three are committed
"""


@pytest.mark.usefixtures("store_backend")
def test_writer_processes_at_once_lose_no_answer_and_no_feedback_change(tmp_path):
    """Several replicas (here processes, each with its own connections) write answers and
    feedback at once; every acknowledged row is there afterwards, and the answer they all rate
    shows no lost update: each history row is the previous state with exactly its own change."""
    log = log_at(tmp_path)
    shared = _answer(log, "the answer everyone rates")
    log.feedback(shared, rating=-1)
    n_writers, rows_each = 3, 30
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), f"w{n}", shared, str(rows_each)],
                                cwd=ROOT, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE) for n in range(n_writers)]
    for w in writers:
        assert w.stdout.readline().strip() == "started", w.stderr.read()
    for w in writers:
        w.stdin.write("go\n")
        w.stdin.flush()
    outs = [w.communicate(timeout=180) for w in writers]
    for w, (_, err) in zip(writers, outs):
        assert w.returncode == 0, err
    acked = [line.split() for out, _ in outs for line in out.splitlines()]
    assert len(acked) == n_writers * rows_each

    fresh = log_at(tmp_path)  # what another replica sees
    assert len(fresh.answers(10_000)) == 1 + len(acked)
    shared_ids = set()
    for aid, fid, sid in acked:
        assert fresh.get(aid) is not None
        assert [h["id"] for h in fresh.feedback_for(aid)] == [int(fid)]
        shared_ids.add(int(sid))
    history = fresh.feedback_for(shared)
    assert {h["id"] for h in history[1:]} == shared_ids and len(history) == 1 + len(acked)
    for before, after in zip(history, history[1:]):
        assert after["rating"] == -1, "a change lost the rating given before the race"
        changed = [k for k in ("comment", "correction") if after[k] != before[k]]
        assert len(changed) == 1, f"lost update between feedback rows {before['id']} and {after['id']}"
    state = fresh.feedback_state(shared)
    assert (state["comment"], state["correction"]) == (history[-1]["comment"], history[-1]["correction"])
