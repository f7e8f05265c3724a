"""Question -> standalone query -> retrieval funnel -> evidence check -> answer -> checked citations.

    answerer = Answerer(Settings.load())
    stream = answerer.stream("What is the deductible?", history=[...])
    for delta in stream:          # text as it is generated (LLM) or composed (extractive)
        print(delta, end="")
    stream.answer                 # Answer: final text, citations, abstained, trace

The final `Answer.text` is what to show: during a fallback (endpoint down mid-stream, an
answer that failed the citation check) it differs from what was streamed.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from rag.answer.citations import Citation, check_citations
from rag.answer.guard import neutralise
from rag.answer.extractive import (NOTICE as EXTRACTIVE_NOTICE, absent_name, absent_subject, acronyms,
                                   embed_text, extract_settled, other_period_figures, passage_calendars,
                                   passage_headings, passage_reports, period_terms, rerank_by_units, shortlist,
                                   strong_evidence)
from rag.answer.llm import Generation, LLMClient, LLMUnavailable
from rag.answer.prompts import load_prompt
from rag.answer.rewrite import check_rewrite, heuristic_rewrite, looks_like_follow_up
from rag.answer.support import SupportModel, passage_sentences
from rag.config import Settings
from rag.errors import RagError
from rag.log import LogRules, open_log
from rag.types import Hit

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
CLOSEST_TEXT = "The closest passages are shown below."
ABSTAIN_TEXT = f"Your documents do not seem to contain the answer to this question. {CLOSEST_TEXT}"
NO_DOCUMENTS_TEXT = "No documents are indexed yet. Add some on the Library page."
NOT_IN_DOCS = "NOT_IN_DOCUMENTS"
MAX_QUESTION_CHARS = 2000
UNIT_POOL = 4  # the answerer's passages are the best k by units among the retriever's top k * UNIT_POOL
UNIT_EMBED_CHARS = 240  # a table row's label and first columns say what it is about; the rest costs time


@dataclass
class Answer:
    question: str
    standalone: str
    text: str
    citations: list[Citation]
    abstained: bool
    mode: str                         # "llm" or "extractive": what produced the text
    notices: list[str]                # degraded modes and fallbacks, to show the user
    passages: list[Hit]
    evidence: float                   # best question-sentence similarity; compared with the abstain threshold
    removed_markers: int = 0
    uncited_sentences: list[str] = field(default_factory=list)
    trace: dict = field(default_factory=dict)
    id: str | None = None
    cached: bool = False

    def to_json(self) -> dict:
        return {"id": self.id, "question": self.question, "standalone": self.standalone, "answer": self.text,
                "abstained": self.abstained, "mode": self.mode, "notices": self.notices,
                "citations": [c.to_json() for c in self.citations], "removed_markers": self.removed_markers,
                "uncited_sentences": self.uncited_sentences, "evidence": round(self.evidence, 4),
                "passages": [passage_json(n, h) for n, h in enumerate(self.passages, 1)],
                "cached": self.cached, "trace": self.trace}


def passage_json(n: int, hit: Hit) -> dict:
    return {"n": n, "source": hit.source, "page": hit.chunk.page, "chunk_id": hit.chunk.id,
            "heading": hit.chunk.heading, "text": hit.chunk.text, "char_start": hit.chunk.char_start,
            "char_end": hit.chunk.char_end, "scores": hit.scores, "ranks": hit.ranks, "ocr": hit.ocr}


def load_calibration(embedder_id: str, data_dir: Path | None = None) -> dict:
    """Thresholds for this embedder: the data folder's own calibration, else the packaged one."""
    for path in ([Path(data_dir) / "calibration.json"] if data_dir else []) + [CALIBRATION_FILE]:
        if path.is_file():
            data = json.loads(path.read_text())
            if embedder_id in data:
                return data[embedder_id]
    return json.loads(CALIBRATION_FILE.read_text())["default"]


def normalise_question(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower().rstrip("?.! ")


def format_passages(hits: list[Hit]) -> str:
    blocks = []
    for n, h in enumerate(hits, 1):
        name = Path(h.source).name if "/" in h.source else h.source
        text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", " ", neutralise(h.chunk.text)[0])
        head = f"[{n}] {name}, page {h.chunk.page}" + (f" - {h.chunk.heading}" if h.chunk.heading else "")
        blocks.append(f"{head}\n{text}")
    return "\n\n".join(blocks)


class Answerer:
    """Cheap to construct; the retriever's models and the LLM client load on first use."""

    def __init__(self, settings: Settings, retriever=None, log: LogRules | None = None):
        from rag.factory import build_retriever

        self.settings = settings
        self.retriever = retriever or build_retriever(settings)
        self.store = self.retriever.store
        self.embedder = self.retriever.embedder
        self.support = SupportModel(self.embedder)
        self.log = log or open_log(settings)
        self.prompt = load_prompt(settings.prompt_version)
        self.rewrite_prompt = load_prompt(settings.rewrite_prompt_version)
        self.code = code_version()
        cal = load_calibration(self.embedder.id, settings.data_dir)
        self.abstain_threshold = _threshold(settings.abstain_threshold, cal["abstain_threshold"], "abstain")
        self.support_threshold = _threshold(settings.support_threshold, cal["support_threshold"], "support")
        self._calendars: tuple[int, dict[str, dict]] = (-1, {})  # (index version, its calendars)
        self.llm = (LLMClient(settings.llm_base_url, settings.llm_model, settings.llm_api_key,
                              settings.llm_timeout_s, settings.llm_max_retries, settings.llm_max_tokens)
                    if settings.llm_base_url else None)

    @property
    def llm_label(self) -> str:
        if self.llm is None:
            return "none (extractive answers)"
        return f"{self.settings.llm_model or 'server default'} at {self.llm.base_url}"

    def ask(self, question: str, history: list[str] | None = None, session: str | None = None) -> Answer:
        stream = self.stream(question, history, session)
        for _ in stream:
            pass
        return stream.answer

    def stream(self, question: str, history: list[str] | None = None, session: str | None = None) -> "AnswerStream":
        question = (question or "").strip()
        if not question:
            raise RagError("ask a question: the text is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise RagError(f"the question is {len(question)} characters long; keep it under {MAX_QUESTION_CHARS}")
        return AnswerStream(self, question, list(history or []), session)

    # -- steps, each small enough to test alone
    def rewrite(self, question: str, history: list[str], timings: dict) -> tuple[str, str]:
        """(standalone question, how it was made)."""
        if not history or not looks_like_follow_up(question):
            return question, "unchanged"
        t0 = time.perf_counter()
        try:
            if self.llm is not None and self.llm.cooling_down is None:
                convo = "\n".join(f"User: {h}" for h in history[-4:])
                gen = self.llm.complete(self.rewrite_prompt.render(history=convo, question=question), max_tokens=60)
                if (line := check_rewrite(gen.text, question, history)) is not None:
                    return line, "llm"
        except LLMUnavailable:
            pass  # the heuristic below takes over; the answer step reports the endpoint's state
        finally:
            timings["rewrite"] = (time.perf_counter() - t0) * 1000
        return heuristic_rewrite(question, history), "heuristic"

    def evidence(self, question: str, hits: list[Hit]):
        """(passage sentences, their vectors, the question vector, evidence score).

        Evidence = the best cosine between the question and any sentence of the passages:
        the feature that separated answerable from unanswerable questions best on the
        calibration set (see calibration.json and `python -m rag.eval calibrate`)."""
        sentences = shortlist(question, passage_sentences(hits), headings=passage_headings(hits),
                              calendars=passage_calendars(hits), reports=passage_reports(hits))
        svecs = self.support.vectors([embed_text(question, x.text, UNIT_EMBED_CHARS) for x in sentences])
        qvec = self.embedder.embed([question])[0] if hits else np.zeros(1, dtype=np.float32)
        evidence = float((svecs @ qvec).max()) if len(sentences) else 0.0
        return sentences, svecs, qvec, evidence

    def fiscal_calendars(self) -> dict[str, dict]:
        """Document source -> fiscal calendar, read once per index version: a fiscal question
        asks for them before its search, and reading every document's facts each time grows
        with the library."""
        version = self.store.version()
        if self._calendars[0] != version:
            self._calendars = (version, self.store.fiscal_calendars())
        return self._calendars[1]

    def cache_key(self, question: str, history: list[str], index_version: int, model: str) -> str:
        parts = [normalise_question(question), *map(normalise_question, history[-4:]), str(index_version),
                 self.prompt.version, self.prompt.sha, model, self.retriever.reranker_name,
                 str(self.settings.answer_k), str(self.settings.extract_first), self.code]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def code_version() -> str:
    """A digest of the answering code (rag/answer/*.py): part of the cache key, so an upgrade
    that changes how answers are made never serves answers the old code made."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def _threshold(setting: str, calibrated: float, name: str) -> float:
    if str(setting).strip().lower() in {"", "calibrated"}:
        return float(calibrated)
    try:
        return float(setting)
    except ValueError as e:
        raise RagError(f"RAG_{name.upper()}_THRESHOLD must be a number or 'calibrated', not {setting!r}") from e


class AnswerStream:
    """Iterate for text deltas; `answer` is set when the iteration ends."""

    def __init__(self, answerer: Answerer, question: str, history: list[str], session: str | None):
        self.a = answerer
        self.question = question
        self.history = history
        self.session = session
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        """rewrite -> retrieve -> guard -> evidence -> generate | extract -> verify -> trace/log.
        Each stage is a function below with explicit inputs and outputs."""
        a, s = self.a, self.a.settings
        t_start = time.perf_counter()
        timings: dict[str, float] = {}
        notices: list[str] = []
        standalone, rewrite_how = a.rewrite(self.question, self.history, timings)
        index_version = a.store.version()
        llm = a.llm
        if llm is not None and (why := llm.cooling_down):
            notices.append(f"LLM unavailable: {why} (not retried for {a.llm.cooldown_s:.0f} s). "
                           "Showing the extractive answer.")
            llm = None
        model = (s.llm_model or "server-default") if llm is not None else "extractive"
        key = a.cache_key(self.question, self.history, index_version, model)
        if s.answer_cache and (hit := a.log.cached(key)) is not None:
            self.answer = self._from_cache(hit, t_start)
            yield self.answer.text
            return

        got = retrieve(a, standalone, timings)
        hits = got.hits
        if got.index_version != index_version:  # a publish landed in between: name the version used
            index_version = got.index_version
            key = a.cache_key(self.question, self.history, index_version, model)
        withheld = guard(hits, notices)
        t0 = time.perf_counter()
        ev = Evidence(*a.evidence(standalone, hits))
        timings["evidence"] = (time.perf_counter() - t0) * 1000

        out = Drafted(mode="llm" if llm is not None else "extractive")
        missing = absent_subject(standalone, hits) or absent_name(standalone, hits, a.retriever.mentions)
        if not hits or missing or (ev.score < a.abstain_threshold and not strong_evidence(standalone, ev.units, hits)):
            out.abstained = True
            if not hits:
                out.abstain_reason, out.text = "no indexed documents", NO_DOCUMENTS_TEXT
            elif missing:
                out.abstain_reason = f"no passage found names {missing}"
                out.text = f"Your documents do not mention {missing}, so they cannot answer this. {CLOSEST_TEXT}"
            else:
                out.abstain_reason = (f"evidence {ev.score:.3f} below the calibrated threshold "
                                      f"{a.abstain_threshold:.3f}")
                out.text = ABSTAIN_TEXT
            yield out.text
        elif llm is not None and s.extract_first and settle(standalone, ev, hits, out):
            notices.append(f"Answered without the LLM: {out.settled}.")
            yield out.text
        elif llm is not None:
            yield from generate(a, llm, standalone, hits, out, notices, timings)
            if out.mode == "llm" and not out.abstained:
                check_period(standalone, ev, hits, out, notices)
        if not out.abstained and out.mode == "extractive" and out.settled is None:
            extract_answer(standalone, ev, hits, out)
            if a.llm is None:
                notices.append(EXTRACTIVE_NOTICE)
            yield ("\n\n" if out.gen.text else "") + out.text
        timings["total"] = (time.perf_counter() - t_start) * 1000

        trace = build_trace(a, out, got, ev, standalone, rewrite_how, index_version, model, timings, withheld)
        answer = Answer(self.question, standalone, out.text, out.citations, out.abstained, out.mode, notices, hits,
                        ev.score, out.removed, out.uncited, trace)
        answer.id = a.log.record(_log_row(answer, self.session, cached=False))
        degraded = any(n.startswith(("LLM unavailable", "The model's answer")) for n in notices)
        if s.answer_cache and not degraded:
            a.log.cache(key, index_version, answer.to_json())
        self.answer = answer

    def _from_cache(self, data: dict, t_start: float) -> Answer:
        from rag.types import Chunk

        hits = [Hit(Chunk(p["chunk_id"], "", 0, p["text"], p["page"], p["char_start"], p["char_end"], p["heading"]),
                    p["source"], p["scores"], p["ranks"], ocr=p.get("ocr", False)) for p in data["passages"]]
        cites = [Citation(**c) for c in data["citations"]]
        trace = dict(data["trace"], cached_from=data["id"],
                     timings_ms={"total": round((time.perf_counter() - t_start) * 1000, 2)})
        answer = Answer(self.question, data["standalone"], data["answer"], cites, data["abstained"], data["mode"],
                        data["notices"], hits, data["evidence"], data["removed_markers"],
                        data["uncited_sentences"], trace, cached=True)
        answer.id = self.a.log.record(_log_row(answer, self.session, cached=True))
        return answer



# ----------------------------------------------------------------- stages
@dataclass
class Retrieved:
    hits: list[Hit]
    index_version: int
    reranker: str
    stage_timings_ms: dict


@dataclass
class Evidence:
    units: list            # answer units of the passages (sentences, table rows) worth scoring
    vectors: np.ndarray    # their vectors
    qvec: np.ndarray       # the question's vector
    score: float           # best question-unit cosine; compared with the abstain threshold


@dataclass
class Drafted:
    """What the generate / extract / verify stages produce."""

    mode: str
    text: str = ""
    citations: list[Citation] = field(default_factory=list)
    abstained: bool = False
    abstain_reason: str | None = None
    removed: int = 0
    uncited: list[str] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    gen: Generation = field(default_factory=Generation)
    settled: str | None = None  # why the extracted answer was given without calling the LLM

    def fall_back(self) -> None:
        """Drop the model's answer: the extract stage then writes the extractive one."""
        self.mode, self.text, self.citations, self.removed, self.uncited = "extractive", "", [], 0, []


def retrieve(a: "Answerer", standalone: str, timings: dict) -> Retrieved:
    """The retrieval funnel for the standalone question: the passages the answerer gets."""
    t0 = time.perf_counter()
    k = a.settings.answer_k
    res = a.retriever.search(standalone, k=k * UNIT_POOL, period_terms=period_terms(standalone, a.fiscal_calendars),
                             extra_terms=sorted(acronyms(standalone)))
    timings["retrieve"] = (time.perf_counter() - t0) * 1000 - res.timings_ms.get("rerank", 0.0)
    timings["rerank"] = res.timings_ms.get("rerank", 0.0)
    hits = res.hits
    if UNIT_POOL > 1:
        t1 = time.perf_counter()
        hits = rerank_by_units(standalone, hits, k)
        timings["units_rerank"] = (time.perf_counter() - t1) * 1000
    return Retrieved(hits, res.index_version, res.reranker, res.timings_ms)


def guard(hits: list[Hit], notices: list[str]) -> list[dict]:
    """Instruction-like sentences of the passages: withheld from the model and never quoted."""
    withheld = [{"source": h.source, "page": h.chunk.page, "sentence": x}
                for h in hits for x in neutralise(h.chunk.text)[1]]
    if withheld:
        where = "; ".join(f"{Path(w['source']).name} p{w['page']}: \"{w['sentence'][:80]}\"" for w in withheld[:3])
        notices.append(f"{len(withheld)} instruction-like sentence(s) in your documents were treated as data "
                       f"and withheld from the answer ({where}).")
    return withheld


def generate(a: "Answerer", llm: LLMClient, standalone: str, hits: list[Hit], out: Drafted, notices: list[str],
             timings: dict) -> Iterator[str]:
    """Stream the LLM's answer, then verify its citations; on failure `out.mode` falls back
    to extractive (the caller then extracts)."""
    out.messages = a.prompt.render(passages=format_passages(hits), question=standalone)
    t0 = time.perf_counter()
    try:
        for delta in llm.stream(out.messages, out.gen):
            yield delta
        timings["generate"] = (time.perf_counter() - t0) * 1000
        if out.gen.ttft_ms is not None:
            timings["ttft"] = out.gen.ttft_ms
        raw = out.gen.text.strip()
        if NOT_IN_DOCS in raw.upper().replace(" ", "_") or not raw:
            out.abstained, out.abstain_reason = True, "the model found no answer in the passages"
            out.text = ABSTAIN_TEXT
            return
        verify(a, raw, hits, out, notices, timings)
    except LLMUnavailable as e:
        timings["generate"] = (time.perf_counter() - t0) * 1000
        notices.append(f"LLM unavailable: {e.message}. Showing the extractive answer.")
        out.mode = "extractive"


def verify(a: "Answerer", raw: str, hits: list[Hit], out: Drafted, notices: list[str], timings: dict) -> None:
    """Check the model's [n] markers against the passages; no verified sentence -> extractive."""
    t1 = time.perf_counter()
    checked = check_citations(raw, hits, a.support, a.support_threshold)
    timings["verify"] = (time.perf_counter() - t1) * 1000
    out.text, out.citations = checked.text, checked.citations
    out.removed, out.uncited = checked.removed_markers, checked.uncited_sentences
    if not any(c.verified for c in out.citations):
        notices.append("The model's answer could not be verified against your documents "
                       "(no sentence of it is supported by the passages), so the extractive "
                       "answer is shown instead.")
        out.fall_back()


def check_period(standalone: str, ev: Evidence, hits: list[Hit], out: Drafted, notices: list[str]) -> None:
    """A model's answer that gives another period's figure as the asked one (a cell of another
    column of the asked metric's row) is replaced by the extractive answer, saying why."""
    if wrong := other_period_figures(standalone, out.text, ev.units, hits):
        notices.append(f"The model's answer gave another period's figure ({wrong[0]}) for the period asked, "
                       "so the extractive answer is shown instead.")
        out.fall_back()


def extract_answer(standalone: str, ev: Evidence, hits: list[Hit], out: Drafted) -> str | None:
    """The embedded answerer (rag/answer/extractive.py): the unit that answers, cited; or the
    periods the documents do cover when the asked one is not among them. Returns why the
    answer can stand without an LLM, or None."""
    out.text, out.citations, declined, settled = extract_settled(standalone, ev.qvec, ev.units, ev.vectors, hits)
    if declined:
        out.abstained, out.abstain_reason = True, declined
    return settled


def settle(standalone: str, ev: Evidence, hits: list[Hit], out: Drafted) -> bool:
    """Cheap first, with an LLM configured: when the extracted answer needs no model (a row of
    the asked metric and period, or a period the documents do not report), it is the answer
    and the LLM is not called. Otherwise `out` is left as it was."""
    trial = Drafted(mode="extractive")
    if (why := extract_answer(standalone, ev, hits, trial)) is None:
        return False
    out.mode, out.text, out.citations, out.settled = trial.mode, trial.text, trial.citations, why
    out.abstained, out.abstain_reason = trial.abstained, trial.abstain_reason
    return True


def build_trace(a: "Answerer", out: Drafted, got: Retrieved, ev: Evidence, standalone: str, rewrite_how: str,
                index_version: int, model: str, timings: dict, withheld: list[dict]) -> dict:
    """Everything needed to reproduce and cost the answer, as logged."""
    s, gen = a.settings, out.gen
    prompt_tokens, completion_tokens, estimated = gen.prompt_tokens, gen.completion_tokens, False
    if out.mode == "llm" and not gen.usage_reported:
        from rag.embed import token_counter

        count = token_counter()
        prompt_tokens = sum(count([m["content"] for m in out.messages]))
        completion_tokens = count([gen.text])[0]
        estimated = True
    cost = ((prompt_tokens or 0) * s.llm_price_in_per_mtok + (completion_tokens or 0) * s.llm_price_out_per_mtok) / 1e6
    return {
        "prompt_version": a.prompt.version, "prompt_sha": a.prompt.sha,
        "model": gen.model or model, "mode": out.mode, "llm_configured": a.llm is not None,
        "index_version": index_version, "embedder": a.embedder.id, "reranker": got.reranker,
        "standalone": standalone, "rewrite": rewrite_how,
        "retrieved": [{"n": n, "chunk_id": h.chunk.id, "source": h.source, "page": h.chunk.page,
                       "scores": {k: round(v, 5) for k, v in h.scores.items()}, "ranks": h.ranks}
                      for n, h in enumerate(got.hits, 1)],
        "stage_timings_ms": {k: round(v, 2) for k, v in got.stage_timings_ms.items()},
        "timings_ms": {k: round(v, 2) for k, v in timings.items()},
        "tokens": {"prompt": prompt_tokens, "completion": completion_tokens, "estimated": estimated},
        "cost_usd": round(cost, 6), "evidence": round(ev.score, 4),
        "abstain_threshold": a.abstain_threshold, "support_threshold": a.support_threshold,
        "abstain_reason": out.abstain_reason, "settled": out.settled, "llm_raw": gen.text or None,
        "finish_reason": gen.finish_reason, "withheld": withheld,
    }


def _log_row(answer: Answer, session: str | None, cached: bool) -> dict:
    t = answer.trace
    return {"session": session, "question": answer.question, "standalone": answer.standalone,
            "answer": answer.text, "mode": answer.mode, "abstained": int(answer.abstained), "cached": int(cached),
            "prompt_version": t.get("prompt_version"), "model": t.get("model"), "reranker": t.get("reranker"),
            "index_version": t.get("index_version"), "notice": "\n".join(answer.notices),
            "citations": [c.to_json() for c in answer.citations],
            "passages": [passage_json(n, h) for n, h in enumerate(answer.passages, 1)], "trace": t}


__all__ = ["ABSTAIN_TEXT", "Answer", "AnswerStream", "Answerer", "Drafted", "Evidence", "Retrieved", "build_trace",
           "check_period", "extract_answer", "format_passages", "generate", "guard", "normalise_question", "retrieve",
           "settle", "verify"]
