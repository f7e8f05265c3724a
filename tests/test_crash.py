"""kill -9 during an ingest leaves the previous index usable and consistent."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, store_at, write_docs

# Both stores: the local one and PostgreSQL (a fresh database per test).
pytestmark = pytest.mark.usefixtures("store_backend")


def run_ingest(paths, data_dir, env_extra=None, **kw):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "ingest", *map(str, paths), "--data-dir", str(data_dir),
                           "--json", "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True, **kw)


def assert_consistent(data_dir, expected_docs: int):
    store = store_at(data_dir)
    assert store.check() == []
    assert len(store.documents()) == expected_docs
    snap = store.snapshot()
    assert len(snap.dense) == len(snap.sparse) == store.stats()["chunks"]
    return store


@pytest.fixture
def base_index(tmp_path):
    data = tmp_path / "data"
    first = write_docs(tmp_path / "first", 3)
    done = run_ingest(first, data)
    assert done.returncode == 0, done.stderr
    return data


@pytest.mark.parametrize("point", ["index_written", "before_commit", "after_commit"])
def test_kill_at_each_publish_step(tmp_path, base_index, point):
    more = write_docs(tmp_path / "more", 2, prefix="more")
    killed = run_ingest(more, base_index, {"RAG_CRASH_AT": point})
    assert killed.returncode == -signal.SIGKILL
    # Before the commit the old version (3 docs) stands; after it the new one (5 docs) is complete.
    store = assert_consistent(base_index, 5 if point == "after_commit" else 3)
    assert store.version() == (2 if point == "after_commit" else 1)
    # Running the same ingest again finishes the job, reusing the vectors already computed.
    again = run_ingest(more, base_index)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["embedded_chunks"] == 0
    assert_consistent(base_index, 5)


def test_kill_during_embedding(tmp_path, base_index):
    more = write_docs(tmp_path / "many", 60, words=400, prefix="many")
    env = {**os.environ, "RAG_INGEST_BATCH_CHUNKS": "16"}
    proc = subprocess.Popen([sys.executable, "-m", "ingest", str(tmp_path / "many"), "--data-dir",
                             str(base_index), "--quiet"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    store = store_at(base_index)
    deadline = time.monotonic() + 120
    # Wait until some vectors are durably pending (an embedding batch finished), then kill.
    while time.monotonic() < deadline and proc.poll() is None:
        if store.stats()["pending_documents"] > 0:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "ingest finished before it could be killed; make the corpus larger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = assert_consistent(base_index, 3)
    assert store.stats()["pending_documents"] > 0
    assert len(more) == 60


def test_two_ingests_at_once(tmp_path, base_index, store_backend):
    """PostgreSQL takes several ingest processes at once, each publishing whole documents; the
    local store admits one writer per data dir and refuses the other with exit status 2."""
    sets = [write_docs(tmp_path / name, 3, prefix=name) for name in ("alpha", "beta")]
    procs = [subprocess.Popen([sys.executable, "-m", "ingest", *map(str, paths), "--data-dir", str(base_index),
                               "--json", "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for paths in sets]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = [p.returncode for p in procs]
    if store_backend == "postgres":
        assert codes == [0, 0], [err for _, err in outs]
        versions = sorted(json.loads(out)["index_version"] for out, _ in outs)
        assert versions == [2, 3]  # two publishes, one after the other
    else:
        assert 0 in codes and set(codes) <= {0, 2}, [err for _, err in outs]
    assert_consistent(base_index, 3 + 3 * codes.count(0))


def test_kill_after_the_hnsw_index_was_dropped_for_a_rebuild(tmp_path, store_backend, embedder, monkeypatch):
    """PostgreSQL past exact search: a publish of a large share of the library drops the HNSW
    index to build it again over all. Killed in between, the previous version still serves
    (searches scan exactly), `check` names the missing index, and a rerun builds it."""
    if store_backend != "postgres":
        pytest.skip("pgvector's HNSW index")
    from rag.search import search

    monkeypatch.setenv("RAG_PG_EXACT_MAX_CHUNKS", "0")
    data = tmp_path / "data"
    assert run_ingest(write_docs(tmp_path / "first", 3), data).returncode == 0
    more = write_docs(tmp_path / "more", 2, prefix="more")
    killed = run_ingest(more, data, {"RAG_CRASH_AT": "hnsw_dropped"})
    assert killed.returncode == -signal.SIGKILL
    store = store_at(data)
    assert len(store.documents()) == 3 and store.version() == 1
    assert [h.source for h in search(store, embedder, "doc 1 about topic1", k=1)] == [
        str(tmp_path / "first" / "doc-001.md")]
    assert [p for p in store.check() if "no HNSW index" in p]
    again = run_ingest(more, data)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["embedded_chunks"] == 0
    assert store.has_hnsw()
    assert_consistent(data, 5)
