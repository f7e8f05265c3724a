"""What the app's pages call: one object per process, one method per user action.

Pages stay thin (read widgets -> one call here -> render). Heavy things (the embedding model,
the index snapshot, the LLM client) are built on first use and reused; the store reloads its
snapshot by itself when the index version changes.
"""
from __future__ import annotations

import csv
import io
import json
import re
import threading
import time
import unicodedata
from datetime import date
from pathlib import Path
from typing import Callable

from rag.config import Settings
from rag.errors import RagError
from rag.log import KEEP, open_log

_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()\-]+")


def safe_filename(name: str) -> str:
    """An uploaded file's name reduced to a plain file name: no folders, no traversal, no
    control or exotic characters. Raises for names with nothing usable left."""
    name = unicodedata.normalize("NFKC", name or "").replace("\\", "/").split("/")[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    if not name or set(name) <= {"_", "."}:
        raise RagError(f"the file name {name!r} has no usable characters; rename the file and upload it again")
    if len(name) > 150:  # shortened, keeping the extension that says how to read the file
        suffix = Path(name).suffix[:16]
        name = name[:150 - len(suffix)] + suffix
    return name


def file_message(message: str | None, path: str) -> str:
    """An ingest message as a person should see it: the file named, not its server path."""
    return (message or "").replace(str(path), Path(path).name)


def reload_notice(serving: dict) -> str | None:
    """What the status says while this replica searches an older index version than the live
    one (store.serving()): the new one is loading, or failed to load (retried by a later search)."""
    old, live = serving["serving"], serving["live"]
    if old is None or old == live:
        return None
    err = serving["error"] and serving["error"]["error"]
    if serving["loading"]:
        return (f"Index version {live} is loading; searches use version {old} meanwhile"
                + (f" (the last try failed: {err})." if err else "."))
    if err:
        wait = serving["error"].get("retry_in_s")
        when = f" in {wait:g} s or later" if wait else ""
        return (f"Index version {live} could not be loaded ({err}); searches use version {old} "
                f"until it can (tried again by a search{when}).")
    return None


class Service:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.load()
        self.log = open_log(self.settings)
        self._answerer = None
        self._answerer_lock = threading.Lock()  # sessions are threads: the first ones arrive together
        self._llm_checked: tuple[float, str | None] = (0.0, None)

    # -- components, built once
    @property
    def answerer(self):
        if self._answerer is None:
            with self._answerer_lock:
                if self._answerer is None:
                    from rag.answer import Answerer

                    self._answerer = Answerer(self.settings, log=self.log)
        return self._answerer

    @property
    def store(self):
        return self.answerer.store

    # -- status and degraded modes
    def llm_problem(self, max_age_s: float = 30.0) -> str | None:
        """Why the configured LLM cannot be used right now (None when fine or not configured)."""
        llm = self.answerer.llm
        if llm is None:
            return None
        if (why := llm.cooling_down) is not None:
            return why
        checked_at, problem = self._llm_checked
        if time.monotonic() - checked_at > max_age_s:
            from rag.answer.llm import LLMUnavailable

            try:
                llm.ping()
                problem = None
            except LLMUnavailable as e:  # shown in the sidebar, not raised
                problem = e.message
            self._llm_checked = (time.monotonic(), problem)
        return problem

    def status(self) -> dict:
        from rag.status import index_status

        st = index_status(self.settings)
        a = self.answerer
        st["llm"] = a.llm_label
        st["reranker"] = a.retriever.reranker_name
        notices = []
        if a.llm is None:
            notices.append("No LLM configured: answers are extractive (quoted sentences). "
                           "Set RAG_LLM_BASE_URL to connect one, or run `make llm`.")
        elif (problem := self.llm_problem()) is not None:
            notices.append(f"LLM endpoint down: {problem}. Answers fall back to extractive.")
        if (note := reload_notice(a.store.serving())) is not None:
            notices.append(note)
        if a.retriever.reranker is None:
            notices.append("No L2 reranker: passages are ranked by fused BM25 + dense scores "
                           "(the measured best default; set RAG_RERANKER to add one).")
        st["notices"] = notices
        return st

    # -- library
    def save_uploads(self, files: list[tuple[str, bytes]]) -> tuple[list[Path], list[dict]]:
        """Write uploads under DATA_DIR/uploads; returns (saved paths, refusals)."""
        folder = Path(self.settings.data_dir) / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        saved, refused = [], []
        for name, data in files:
            try:
                clean = safe_filename(name)
            except RagError as e:
                refused.append({"path": name, "status": "error", "reason": "bad_name", "message": e.message})
                continue
            if len(data) > self.settings.max_file_bytes:
                refused.append({"path": clean, "status": "error", "reason": "too_large",
                                "message": f"{len(data) / 1e6:.1f} MB is over the {self.settings.max_file_mb:g} MB "
                                           "limit (RAG_MAX_FILE_MB)"})
                continue
            path = folder / clean
            tmp = path.with_name(f".{clean}.upload")
            tmp.write_bytes(data)
            tmp.replace(path)
            saved.append(path)
        return saved, refused

    def ingest_uploads(self, files: list[tuple[str, bytes]], progress: Callable | None = None) -> dict:
        """Save and index uploaded files. `progress` gets ingest.pipeline.ProgressEvents.

        Rows name files by their upload name, never by server path; a refused file is removed
        from uploads/ (nothing of it is kept), what was indexed before stays as it was."""
        from ingest.pipeline import ingest_paths

        saved, refused = self.save_uploads(files)
        report = ingest_paths(saved, self.settings, progress=progress) if saved else None
        if report:
            self.store.snapshot()  # done means searchable here (other sessions search meanwhile)
        rows = refused + ([{k: v for k, v in r.items() if k in {"path", "status", "reason", "message", "pages", "chunks"}}
                           for r in report.to_dict()["files"]] if report else [])
        for r in rows:
            path = r.pop("path")
            r["file"] = Path(path).name
            if r.get("message"):
                r["message"] = file_message(r["message"], path)
            if r["status"] == "error" and Path(path) in saved and self.store.live_document(str(path)) is None:
                Path(path).unlink(missing_ok=True)
        return {"files": rows, "index_version": report.index_version if report else self.store.version(),
                "seconds": round(report.seconds, 1) if report else 0.0}

    def documents(self) -> list[dict]:
        return self.store.documents()

    def delete(self, sources: list[str]) -> int:
        from ingest.pipeline import delete_sources

        deleted, version = delete_sources(sources, self.settings)
        self.store.snapshot()  # this replica's next search knows the delete
        return len(deleted)

    def reindex(self) -> int:
        from ingest.pipeline import rebuild_index

        return rebuild_index(self.settings)

    def chunks(self, doc_id: str) -> list[dict]:
        return [{"ordinal": c.ordinal, "page": c.page, "heading": c.heading, "text": c.text,
                 "chars": f"{c.char_start}-{c.char_end}"} for c in self.store.chunks_of(doc_id)]

    def playground(self, query: str, k: int = 10) -> dict:
        """Each passage's rank at every stage, side by side."""
        res = self.answerer.retriever.search(query, k=k, select=False)
        rows = []
        for final, h in enumerate(res.hits, 1):
            rows.append({"final": final, "source": Path(h.source).name, "page": h.chunk.page,
                         "bm25": h.ranks.get("bm25"), "dense": h.ranks.get("dense"), "fused": h.ranks.get("fused"),
                         "reranked": h.ranks.get("rerank"), "bm25_score": h.scores.get("bm25"),
                         "dense_score": h.scores.get("dense"), "fused_score": h.scores.get("fused"),
                         "text": " ".join(h.chunk.text.split())[:300]})
        return {"rows": rows, "timings_ms": {k: round(v, 1) for k, v in res.timings_ms.items()},
                "reranker": res.reranker}

    # -- chat
    def ask(self, question: str, history: list[str] | None = None, session: str | None = None):
        return self.answerer.stream(question, history, session)

    def feedback(self, answer_id: str, rating: int | None = KEEP, comment: str | None = KEEP,
                 correction: str | None = KEEP) -> int:
        """Set some of an answer's feedback; the fields not passed keep their value."""
        return self.log.feedback(answer_id, rating, comment, correction)

    def feedback_state(self, answer_id: str) -> dict | None:
        return self.log.feedback_state(answer_id)

    def feedback_history(self, answer_id: str) -> list[dict]:
        return self.log.feedback_for(answer_id)

    # -- conversations, per owner ("user:EMAIL" with login, "browser:ID" without)
    def conversations(self, owner: str) -> list[dict]:
        return self.log.conversations(owner)

    def conversation(self, conversation_id: str, owner: str) -> dict | None:
        return self.log.conversation(conversation_id, owner)

    def new_conversation(self, owner: str) -> str:
        return self.log.new_conversation(owner)

    def add_turn(self, conversation_id: str, owner: str, question: str, answer: dict) -> None:
        self.log.add_turn(conversation_id, owner, question, answer)

    def rename_conversation(self, conversation_id: str, owner: str, title: str) -> None:
        self.log.rename_conversation(conversation_id, owner, title)

    def delete_conversation(self, conversation_id: str, owner: str) -> bool:
        return self.log.delete_conversation(conversation_id, owner)

    # -- review
    def review(self, rating: int | None = None, since: date | None = None, until: date | None = None,
               has_comment: bool | None = None, prompt_version: str | None = None, model: str | None = None,
               abstained: bool | None = None, limit: int = 5000) -> list[dict]:
        rows = self.log.answers(limit)
        out = []
        for r in rows:
            day = r["created_at"][:10]
            if rating is not None and r.get("rating") != rating:
                continue
            if since and day < since.isoformat() or until and day > until.isoformat():
                continue
            if has_comment is not None and bool(r.get("comment")) != has_comment:
                continue
            if prompt_version and r["prompt_version"] != prompt_version:
                continue
            if model and r["model"] != model:
                continue
            if abstained is not None and bool(r["abstained"]) != abstained:
                continue
            out.append(r)
        return out

    @staticmethod
    def export_jsonl(rows: list[dict]) -> str:
        return "".join(json.dumps(r, default=str) + "\n" for r in rows)

    @staticmethod
    def export_csv(rows: list[dict]) -> str:
        cols = ["id", "created_at", "question", "answer", "mode", "abstained", "prompt_version", "model",
                "reranker", "index_version", "rating", "comment", "correction"]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c) for c in cols})
        return buf.getvalue()

    def add_to_eval_set(self, answer_id: str, path: Path | None = None) -> dict:
        """Append a reviewed answer as an evaluation case; its correction is the expected answer."""
        row = self.log.get(answer_id)
        if row is None:
            raise RagError(f"no logged answer with id {answer_id!r}")
        correction = (self.log.feedback_state(answer_id) or {}).get("correction")
        cites = [c for c in row["citations"] if c.get("verified")] or row["citations"]
        unanswerable = bool(row["abstained"]) and correction is None
        case = {"id": f"review-{answer_id[:12]}", "question": row["question"],
                "answer": None if unanswerable else (correction or row["answer"]), "unanswerable": unanswerable,
                "source": None if unanswerable or not cites else Path(cites[0]["source"]).name,
                "page": None if unanswerable or not cites else cites[0]["page"], "from_answer": answer_id}
        if not unanswerable and case["source"] is None:
            raise RagError("this answer has no citation to take the expected source from; "
                           "it cannot become an evaluation case")
        target = path or Path(self.settings.data_dir) / "eval" / "reviewed.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        existing = target.read_text().splitlines() if target.exists() else []
        if any(json.loads(x).get("from_answer") == answer_id for x in existing if x.strip()):
            raise RagError("this answer is already in the evaluation set")
        with open(target, "a", encoding="utf-8") as f:
            f.write(json.dumps(case) + "\n")
        return {"case": case, "path": str(target)}


__all__ = ["Service", "file_message", "safe_filename"]
