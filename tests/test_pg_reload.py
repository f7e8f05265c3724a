"""A PostgreSQL replica keeps searching the snapshot it has while the next one loads in the
background (rag/store/postgres.py, module doc), on a real PostgreSQL (tests/conftest.py).

The loader thread is held by wrapping the replica's own `_load` with an event (the real load
runs once it is let go), so "a search during the reload" is deterministic: no sleeps, no timing.
"""
from __future__ import annotations

import threading
import time

import pytest

from ingest.pipeline import delete_sources, ingest_paths
from rag.retrieve import Retriever
from tests.conftest import store_at, write_docs

pytestmark = pytest.mark.parametrize("store_backend", ["postgres"], indirect=True)


def hold_loader(store, fail: str | None = None) -> tuple[threading.Event, threading.Event, dict]:
    """Make the store's background loads wait for `release` (and then raise `fail`, when given).
    Returns (entered, release, seen): `seen` holds the loader's thread and connection."""
    entered, release, seen = threading.Event(), threading.Event(), {}
    inner = store._load

    def held(version):
        if threading.current_thread() is threading.main_thread():
            return inner(version)  # a blocking load (the first one): not held
        seen["thread"], seen["conn"] = threading.current_thread(), store.conn
        entered.set()
        assert release.wait(120), "the test never let the loader go"
        if fail:
            raise RuntimeError(fail)
        return inner(version)

    store._load = held
    return entered, release, seen


def sources(result) -> set[str]:
    return {h.source for h in result.hits}


def test_a_search_during_a_reload_gets_the_old_version_then_the_new_one(store_backend, tmp_path, settings, embedder):
    from rag.service import reload_notice

    docs = write_docs(tmp_path / "base", 3, prefix="base")
    ingest_paths(docs, settings, embedder=embedder)
    replica = store_at(settings.data_dir)
    search = Retriever(replica, embedder).search
    assert search("base 1 about topic1", k=5).index_version == 1  # the first load waits for it
    gone = [r["vid"] for r in replica.query(
        "SELECT c.vid FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE d.source = ?", [str(docs[1])])]
    entered, release, seen = hold_loader(replica)

    # Other processes publish twice: a new document (version 2), then a delete (version 3).
    fresh = write_docs(tmp_path / "fresh", 1, prefix="fresh")[0]
    assert ingest_paths([fresh], settings, embedder=embedder).index_version == 2
    assert delete_sources([docs[1].name], settings)[1] == 3

    during = search("fresh 0 about topic0", k=5)  # returns while the loader is held
    assert entered.wait(60) and seen["thread"].is_alive()
    assert during.index_version == 1 and str(fresh) not in sources(during)
    assert seen["conn"] is not replica.conn, "the loader must use a connection of its own"
    assert replica.serving() == {"serving": 1, "live": 3, "loading": True, "error": None}
    assert reload_notice(replica.serving()) == "Index version 3 is loading; searches use version 1 meanwhile."
    # The old snapshot still names the deleted document's chunks, but they never become hits:
    # hits are read back from the catalog, live chunks only.
    stale = search("base 1 about topic1", k=5)
    assert stale.index_version == 1 and set(gone) & set(stale.candidates["bm25"][0].tolist())
    assert stale.hits and str(docs[1]) not in sources(stale)

    release.set()
    seen["thread"].join(120)
    assert not seen["thread"].is_alive() and seen["conn"].closed
    after = search("fresh 0 about topic0", k=5)
    assert after.index_version == 3 and str(fresh) in sources(after)
    assert not set(gone) & set(search("base 1 about topic1", k=5).candidates["bm25"][0].tolist())
    assert replica.serving() == {"serving": 3, "live": 3, "loading": False, "error": None}
    assert reload_notice(replica.serving()) is None
    assert replica.check() == []


def test_a_failed_reload_keeps_the_old_snapshot_shows_why_and_is_retried(store_backend, tmp_path, settings, embedder):
    from rag.config import Settings
    from rag.service import Service

    ingest_paths(write_docs(tmp_path / "base", 2, prefix="base"), settings, embedder=embedder)
    svc = Service(Settings.load(data_dir=settings.data_dir, llm_base_url=""))  # what the app runs
    replica, search = svc.store, svc.answerer.retriever.search
    assert search("base 0 about topic0", k=3).index_version == 1
    entered, release, seen = hold_loader(replica, fail="injected: cannot allocate memory")
    fresh = write_docs(tmp_path / "fresh", 1, prefix="fresh")[0]
    assert ingest_paths([fresh], settings, embedder=embedder).index_version == 2

    assert search("fresh 0 about topic0", k=3).index_version == 1
    assert entered.wait(60)
    release.set()
    seen["thread"].join(120)
    assert replica.reload_error["error"] == "RuntimeError: injected: cannot allocate memory"
    assert replica.reload_error["serving"] == 1
    notes = svc.status()["notices"]
    assert any("Index version 2 could not be loaded (RuntimeError: injected" in n and "use version 1" in n
               for n in notes), notes
    assert seen["conn"].closed  # the failed loader let its connection go

    assert replica.reload_error["retry_in_s"] == replica.RELOAD_RETRY_S
    assert any("tried again by a search in 1 s or later" in n for n in notes), notes
    del replica._load  # the cause goes away; a search after the back-off tries again, and succeeds
    entered, release, seen = hold_loader(replica)
    assert search("base 0 about topic0", k=3).index_version == 1
    assert not entered.wait(0.3)  # within the back-off: no new load
    time.sleep(replica.RELOAD_RETRY_S)
    result = search("base 0 about topic0", k=3)  # served from the old snapshot meanwhile
    assert result.index_version == 1 and result.hits
    assert entered.wait(60)
    assert any("Index version 2 is loading; searches use version 1 meanwhile (the last try failed: "
               "RuntimeError: injected" in n for n in svc.status()["notices"])
    release.set()
    seen["thread"].join(120)
    after = search("fresh 0 about topic0", k=3)
    assert after.index_version == 2 and str(fresh) in sources(after)
    assert replica.reload_error is None
    assert not any("Index version" in n for n in svc.status()["notices"])


def test_the_replica_that_takes_an_upload_serves_it_on_its_next_search(store_backend, tmp_path, settings, embedder):
    """Service.ingest_uploads (the Library page) returns once this replica has loaded the version
    it published: the person who uploaded finds the file in their next question."""
    from rag.config import Settings
    from rag.service import Service

    ingest_paths(write_docs(tmp_path / "base", 2, prefix="base"), settings, embedder=embedder)
    svc = Service(Settings.load(data_dir=settings.data_dir, llm_base_url=""))
    search = svc.answerer.retriever.search
    assert search("base 0 about topic0", k=3).index_version == 1
    out = svc.ingest_uploads([("boiler.md", b"# Boiler\n\nThe boiler is serviced every October by Heatwise.")])
    assert out["index_version"] == 2
    result = search("when is the boiler serviced", k=3)
    assert result.index_version == 2 and result.hits[0].source.endswith("boiler.md")
    assert svc.delete([result.hits[0].source]) == 1
    assert search("when is the boiler serviced", k=3).index_version == 3
