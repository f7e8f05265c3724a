"""Publishing, written once for both stores: pending documents go live and replaced or deleted
ones go, together, in one catalog transaction that also moves the index version on.

    plan (under the publish lock) -> prepare the derived indexes of version N+1 ->
    crash_point("before_commit") -> one transaction -> crash_point("after_commit") -> tidy up

A crash before the transaction leaves version N in force (with its pending rows, which a rerun
resumes from); after it, version N+1 is complete. Readers load the indexes of the catalog's
version and reload them when it changes (`snapshot`): a store with `background_reload` (PostgreSQL)
lets searches go on with the snapshot it has while the next one loads in a thread of its own.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Iterable, Iterator

from rag.store import rules
from rag.store.rules import PublishPlan, Snapshot

log = logging.getLogger(__name__)


class Publisher:
    """Mixed into a Catalog subclass that implements the hooks below."""

    _snapshot: Snapshot | None = None
    # Searches (snapshot(stale_ok=True)) keep the snapshot they have while the next one loads
    # in a thread; False: they wait for it (the local store, whose load reads prebuilt files).
    background_reload = False
    reload_error: dict | None = None  # the last background load's failure, until one succeeds
    # A failed background load is tried again by a search no sooner than this long after it,
    # doubling with each failure in a row up to the cap: a database that refuses every load
    # is not asked again by every search of every replica.
    RELOAD_RETRY_S = 1.0
    RELOAD_RETRY_MAX_S = 60.0

    def _init_snapshots(self) -> None:
        self._snapshot = None
        self._snapshot_lock = threading.Lock()  # one load at a time, blocking or in the background
        self._reloader: threading.Thread | None = None  # the background load under way
        self._reloader_lock = threading.Lock()
        self._failed_loads = 0       # background loads failed in a row
        self._retry_at = 0.0         # time.monotonic() before which no background load starts

    # ------------------------------------------------------------------ hooks
    def _publish_lock(self) -> contextlib.AbstractContextManager:
        """Held from plan to commit so that two publishes never interleave."""
        raise NotImplementedError

    def _stale_runs(self, conn, run_id: str | None) -> list[str]:
        """Runs whose pending documents this publish drops: interrupted ones, never published."""
        raise NotImplementedError

    def _prepare_indexes(self, plan: PublishPlan, version: int, dim: int,
                         embedder_id: str | None, chunker_version: str | None) -> None:
        """Build what readers of `version` need outside the catalog (before the commit)."""
        raise NotImplementedError

    def _after_publish(self, version: int) -> None:
        """Tidy up after the commit (old index versions); a crash here loses nothing."""

    def _load(self, version: int) -> Snapshot:
        """The indexes of the live version (which may be past `version`), for searches; the
        caller holds the load lock. It may build on the snapshot held (PostgreSQL: by delta)."""
        raise NotImplementedError

    def _load_fresh(self, version: int) -> Snapshot:
        """A load that owes nothing to the snapshot held (what `check` compares)."""
        return self._load(version)

    def _after_load(self) -> None:
        """After a background load is served, in its thread: tidy the snapshot up (PostgreSQL
        compacts its BM25 postings); swapping in a result is the hook's to do, under the lock."""

    def _thread_done(self) -> None:
        """A thread of ours ends (the background loader): release what it holds (its connection)."""

    # ---------------------------------------------------------------- publish
    def _plan(self, run_id: str | None, delete_doc_ids: Iterable[str]) -> PublishPlan:
        plan = PublishPlan(run_id, self.version(), deleted=set(delete_doc_ids))
        if run_id:
            plan.pending = [r[0] for r in self._exec(
                "SELECT id FROM documents WHERE status='pending' AND run_id = ?", (run_id,))]
        for start in range(0, len(plan.pending), 900):
            part = plan.pending[start:start + 900]
            plan.deleted |= {r[0] for r in self._exec(
                "SELECT id FROM documents WHERE status='live' AND source IN "
                f"(SELECT source FROM documents WHERE id IN ({rules.marks(len(part))}))", part)}
        return plan

    def publish(self, run_id: str | None, delete_doc_ids: Iterable[str] = (),
                embedder_id: str | None = None, dim: int | None = None,
                chunker_version: str | None = None) -> int:
        """Make this run's pending documents live and drop `delete_doc_ids`, atomically.

        Returns the new index version (unchanged when there was nothing to do).
        The caller holds `writer()`.
        """
        with self._publish_lock():
            plan = self._plan(run_id, delete_doc_ids)
            if plan.empty:
                return plan.base_version
            version = plan.base_version + 1
            dim = dim or int(self.meta("embedding_dim") or 0)
            embedder_id = embedder_id or self.meta("embedder_id")
            chunker_version = chunker_version or self.meta("chunker_version")
            self._prepare_indexes(plan, version, dim, embedder_id, chunker_version)
            rules.crash_point("before_commit")
            with self.transaction() as conn:
                self._commit(conn, plan, version, {"embedder_id": embedder_id, "embedding_dim": dim or None,
                                                   "chunker_version": chunker_version})
            rules.crash_point("after_commit")
        self._after_publish(version)
        return version

    def _commit(self, conn, plan: PublishPlan, version: int, meta: dict) -> None:
        self._delete_docs(conn, plan.deleted)
        for run in self._stale_runs(conn, plan.run_id):
            self._delete_docs(conn, [r[0] for r in self._exec(
                "SELECT id FROM documents WHERE status='pending' AND run_id = ?", (run,), conn)])
        if plan.run_id:
            self._exec("UPDATE documents SET status='live' WHERE status='pending' AND run_id = ?",
                       (plan.run_id,), conn)
        for key, value in (("index_version", version), *meta.items(), ("updated_at", rules.now_iso())):
            if value is not None:
                self._set_meta(conn, key, value)

    def delete_sources(self, sources: list[str]) -> tuple[list[str], int]:
        """Remove documents from every index. Returns (deleted doc ids, new version)."""
        ids = self.resolve_sources(sources)
        return ids, self.publish(None, delete_doc_ids=ids)

    # ------------------------------------------------------------------ reads
    def snapshot(self, stale_ok: bool = False) -> Snapshot:
        """The loaded indexes of the live version; reloaded when the version changes.

        `stale_ok` (searches): where the store reloads in the background, a snapshot it already
        has is returned at once while the live version loads in a thread; the next search after
        that load gets the new one. Only the first load (no snapshot yet) waits. Without it the
        caller waits for the live version (for a load under way in the background, too)."""
        version = self.version()
        snap = self._snapshot
        if snap is not None and snap.version == version:
            return snap
        if stale_ok and snap is not None and self.background_reload:
            self._reload_in_background()
            return snap
        with self._snapshot_lock:
            if self._snapshot is not None and self._snapshot.version == version:
                return self._snapshot
            self._snapshot = self._load(version)
            self.reload_error = None
            return self._snapshot

    def _reload_in_background(self) -> None:
        """Load the live version in a thread of its own, unless one is at it already."""
        with self._reloader_lock:
            if self._reloader is not None or time.monotonic() < self._retry_at:
                return
            self._reloader = threading.Thread(target=self._reload, name="snapshot-reload", daemon=True)
            self._reloader.start()

    def _reload(self) -> None:
        """The background loader: swap the new snapshot in (one assignment: a search holds the
        old one or the new one, never a mix), or keep the old one and record why not; a search
        that finds the version moved on tries again once the back-off (RELOAD_RETRY_S) is over.
        It holds the load lock, as a blocking load does: one load at a time, and a caller of
        snapshot() waits for this one."""
        old = self._snapshot.version if self._snapshot is not None else None
        try:
            with self._snapshot_lock:
                version = self.version()
                if self._snapshot is None or self._snapshot.version != version:
                    self._snapshot = self._load(version)
            self.reload_error = None
            self._failed_loads, self._retry_at = 0, 0.0
            self._after_load()
        except Exception as e:  # noqa: BLE001 - recorded, shown (Service.status) and retried
            log.exception("loading the live index version failed; searches keep version %s", old)
            self._failed_loads += 1
            wait = min(self.RELOAD_RETRY_MAX_S, self.RELOAD_RETRY_S * 2 ** (self._failed_loads - 1))
            self._retry_at = time.monotonic() + wait
            self.reload_error = {"error": f"{type(e).__name__}: {e}", "at": time.time(), "serving": old,
                                 "retry_in_s": wait}
        finally:
            try:
                self._thread_done()
            finally:
                with self._reloader_lock:
                    self._reloader = None

    def serving(self) -> dict:
        """What searches use now, for the status the app shows: the version loaded, the live one,
        and, when they differ, whether the live one is loading or failed to load."""
        snap, live = self._snapshot, self.version()
        return {"serving": snap.version if snap else None, "live": live,
                "loading": self._reloader is not None, "error": self.reload_error}

    def check(self) -> list[str]:
        """Consistency of the catalog and the indexes of the live version: a list of problems."""
        problems = self.catalog_problems()
        version = self.version()
        live = self.live_vids()
        if version == 0:
            if len(live):
                problems.append("chunks are live but no index version was published")
            return problems
        return problems + rules.index_problems(version, live, self._load_fresh(version))


@contextlib.contextmanager
def no_lock() -> Iterator[None]:
    """For stores whose writer lock already admits one publisher at a time."""
    yield

