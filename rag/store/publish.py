"""Publishing, written once for both stores: pending documents go live and replaced or deleted
ones go, together, in one catalog transaction that also moves the index version on.

    plan (under the publish lock) -> prepare the derived indexes of version N+1 ->
    crash_point("before_commit") -> one transaction -> crash_point("after_commit") -> tidy up

A crash before the transaction leaves version N in force (with its pending rows, which a rerun
resumes from); after it, version N+1 is complete. Readers load the indexes of the catalog's
version and reload them when it changes (`snapshot`).
"""
from __future__ import annotations

import contextlib
from typing import Iterable, Iterator

from rag.store import rules
from rag.store.rules import PublishPlan, Snapshot


class Publisher:
    """Mixed into a Catalog subclass that implements the hooks below."""

    _snapshot: Snapshot | None = None

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
        raise NotImplementedError

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
    def snapshot(self) -> Snapshot:
        """The loaded indexes of the live version; reloaded when the version changes."""
        version = self.version()
        snap = self._snapshot
        if snap is not None and snap.version == version:
            return snap
        with self._snapshot_lock:
            if self._snapshot is not None and self._snapshot.version == version:
                return self._snapshot
            self._snapshot = self._load(version)
            return self._snapshot

    def check(self) -> list[str]:
        """Consistency of the catalog and the indexes of the live version: a list of problems."""
        problems = self.catalog_problems()
        version = self.version()
        live = self.live_vids()
        if version == 0:
            if len(live):
                problems.append("chunks are live but no index version was published")
            return problems
        return problems + rules.index_problems(version, live, self._load(version))


@contextlib.contextmanager
def no_lock() -> Iterator[None]:
    """For stores whose writer lock already admits one publisher at a time."""
    yield

