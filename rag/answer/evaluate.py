"""Answer evaluation on a JSONL question set, and abstention-threshold calibration.

A case: {"id", "question", "answer" (null when unanswerable), "unanswerable",
"source" (file name), "page" (1-based)} or "sources": [{"source", "page"}, ...].

Metrics (answerable = not unanswerable):
- hit@k: an expected (source, page) is among the passages given to the answerer.
- verified_on_target: share of answerable questions with at least one verified citation on
  an expected document and page.
- citation_precision: share of citations on answerable questions whose passage really holds
  the fact: it is on an expected document and page, or it contains the expected answer's
  content terms (at least 80% of them). Judged against the question set, not by our own
  support check, which is reported separately as `verified_share`.
- citation_recall: share of answerable questions with a citation on an expected document and page.
- token_f1: answer text vs expected answer (SQuAD-style, markers removed); judged_correct: share
  of answered answerable questions an LLM judge (prompt judge-v1) says state the expected
  answer, when an LLM is configured.
- abstention precision and recall, unanswerable being the positive class.
- latency: time to first text and total time, p50/p95, measured around the stream.
"""
from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np

from rag.errors import RagError
from rag.store.sparse import analyse

_MARK = re.compile(r"\[\d+\]")
_TOKEN = re.compile(r"[a-z0-9]+")


def load_cases(path: Path) -> list[dict]:
    cases = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                c = json.loads(line)
            except json.JSONDecodeError as e:
                raise RagError(f"{path}:{i} is not JSON: {e}") from e
            missing = {"id", "question", "unanswerable"} - set(c)
            if missing:
                raise RagError(f"{path}:{i} lacks {', '.join(sorted(missing))}")
            if not c["unanswerable"] and not (c.get("sources") or c.get("source")):
                raise RagError(f"{path}:{i} is answerable but names no source")
            cases.append(c)
    if not cases:
        raise RagError(f"{path} holds no cases")
    return cases


def targets(case: dict) -> set[tuple[str, int | None]]:
    items = case.get("sources") or ([{"source": case["source"], "page": case.get("page")}] if case.get("source") else [])
    return {(Path(t["source"]).name, t.get("page")) for t in items}


def on_target(source: str, page: int, case: dict) -> bool:
    name = Path(source).name
    return any(name == s and (p is None or p == page) for s, p in targets(case))


def on_document(source: str, case: dict) -> bool:
    return any(Path(source).name == s for s, _ in targets(case))


def holds_answer(text: str, answer: str | None) -> bool:
    terms = set(analyse(answer or ""))
    return bool(terms) and len(terms & set(analyse(text))) / len(terms) >= 0.8


def token_f1(prediction: str, truth: str | None) -> float | None:
    if truth is None:
        return None
    p = _TOKEN.findall(_MARK.sub(" ", prediction.lower()))
    t = _TOKEN.findall(truth.lower())
    common = sum((Counter(p) & Counter(t)).values())
    if not p or not t or not common:
        return 0.0
    precision, recall = common / len(p), common / len(t)
    return 2 * precision * recall / (precision + recall)


def judge(llm, question: str, expected: str | None, candidate: str) -> bool | None:
    """LLM judge (prompt judge-v1): does the candidate state the expected answer? None when
    there is nothing to judge, the endpoint fails, or the reply is not a clear YES/NO."""
    from rag.answer.llm import LLMUnavailable
    from rag.answer.prompts import load_prompt

    if llm is None or expected is None:
        return None
    messages = load_prompt("judge-v1").render(question=question, expected=expected, candidate=_MARK.sub("", candidate))
    try:
        reply = llm.complete(messages, max_tokens=3).text.strip().upper()
    except LLMUnavailable:
        return None
    return True if reply.startswith("YES") else False if reply.startswith("NO") else None


def run_case(answerer, case: dict) -> dict:
    t0 = time.perf_counter()
    first = None
    stream = answerer.stream(case["question"], history=case.get("history"), session="eval")
    for delta in stream:
        if first is None and delta.strip():
            first = (time.perf_counter() - t0) * 1000
    total = (time.perf_counter() - t0) * 1000
    a = stream.answer
    passages = {p.chunk.id: p for p in a.passages}
    cites = []
    for c in a.citations:
        hit = passages.get(c.chunk_id)
        text = hit.chunk.text if hit is not None else c.quote
        target = on_target(c.source, c.page, case)
        cites.append({"n": c.n, "verified": c.verified, "inferred": c.inferred, "on_target": target,
                      "correct": target or holds_answer(text, case.get("answer"))})
    return {
        "id": case["id"], "unanswerable": bool(case["unanswerable"]), "abstained": a.abstained,
        "abstain_reason": a.trace.get("abstain_reason"), "settled": a.trace.get("settled"),
        "mode": a.mode, "evidence": a.evidence, "answer": a.text, "expected": case.get("answer"),
        "hit": any(on_target(h.source, h.chunk.page, case) for h in a.passages),
        "doc_hit": any(on_document(h.source, case) for h in a.passages),
        "citations": cites, "token_f1": token_f1(a.text, case.get("answer")) if not a.abstained else 0.0,
        "ttft_ms": first if first is not None else total, "total_ms": total,
        "notices": a.notices, "tokens": a.trace.get("tokens"), "cost_usd": a.trace.get("cost_usd", 0.0),
        "answer_id": a.id,
        "judged_correct": judge(answerer.llm, case["question"], case.get("answer"), a.text)
        if not a.abstained and not case["unanswerable"] else None,
        **figure_outcome(case, a.text, a.abstained),
    }


_FIGURE = re.compile(r"\d[\d,]*(?:\.\d+)?")


def figures(text: str) -> set[str]:
    """Numbers as printed, without thousands separators: "$6,497.5" -> {"6497.5"}."""
    return {m.group().replace(",", "").rstrip(".") for m in _FIGURE.finditer(text)}


def _decimals(figure: str) -> int:
    return len(figure.split(".")[1]) if "." in figure else 0


def figure_given(expected: str, given: set[str]) -> bool:
    """The expected figure is among those given, also when one is printed more precisely:
    19,207.8 (a table in millions) is 19,208 (its rounding in the text). Only for figures of
    three or more digits, so that 1.6 never passes for 2."""
    if expected in given:
        return True
    if len(expected.replace(".", "").lstrip("0")) < 3:
        return False
    places = _decimals(expected)
    return any(_decimals(g) > places and round(float(g), places) == float(expected) for g in given)


def first_words(text: str, n: int = 60) -> str:
    return " ".join(_MARK.sub(" ", text).split()[:n])


def figure_outcome(case: dict, text: str, abstained: bool) -> dict:
    """For cases with a figure to find ("kind" figure/followup) or a period the documents do
    not report: is the expected figure in the first 60 words; is another period's figure
    given instead ("wrong_answers" of the case); did an unreported question get a refusal or
    the list of periods the documents cover."""
    kind = case.get("kind")
    if kind not in {"figure", "followup", "unreported"}:
        return {}
    lead = figures(first_words(text)) if not abstained or kind == "unreported" else set()
    wrong = set().union(*(figures(w) for w in case.get("wrong_answers") or [])) if case.get("wrong_answers") else set()
    if kind == "unreported":
        declined = abstained or bool(re.search(r"do(?:es)? not (?:seem to )?(?:report|contain)", text, re.I))
        return {"kind": kind, "unreported_handled": declined,
                "wrong_period": (not declined) and bool(lead & wrong)}
    expected = figures(case.get("answer") or "")
    found = bool(expected) and all(figure_given(e, lead) for e in expected)
    return {"kind": kind, "figure_first60": found, "wrong_period": (not found) and bool(lead & (wrong - expected))}


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def reason_kind(reason: str | None) -> str:
    """An abstention reason without its figures: "evidence below the calibrated threshold"."""
    return " ".join(re.sub(r"\([^)]*\)|\d[\d.]*", "", reason or "unrecorded").split())


def summarise(records: list[dict]) -> dict:
    ans = [r for r in records if not r["unanswerable"]]
    unans = [r for r in records if r["unanswerable"]]
    cites = [c for r in ans for c in r["citations"]]
    abstained = [r for r in records if r["abstained"]]
    true_abst = [r for r in abstained if r["unanswerable"]]
    answered = [r for r in ans if not r["abstained"]]
    return {
        "cases": len(records), "answerable": len(ans), "unanswerable": len(unans),
        "hit_at_k": round(sum(r["hit"] for r in ans) / max(1, len(ans)), 4),
        "doc_hit_at_k": round(sum(r["doc_hit"] for r in ans) / max(1, len(ans)), 4),
        "verified_on_target": round(sum(any(c["verified"] and c["on_target"] for c in r["citations"])
                                        for r in ans) / max(1, len(ans)), 4),
        "citation_precision": round(sum(c["correct"] for c in cites) / len(cites), 4) if cites else None,
        "citation_recall": round(sum(any(c["on_target"] for c in r["citations"]) for r in ans) / max(1, len(ans)), 4),
        "judged_correct": (round(sum(bool(r.get("judged_correct")) for r in judged) / len(judged), 4)
                           if (judged := [r for r in answered if r.get("judged_correct") is not None]) else None),
        "citations": len(cites),
        "verified_share": round(sum(c["verified"] for c in cites) / len(cites), 4) if cites else None,
        "inferred_share": round(sum(c["inferred"] for c in cites) / len(cites), 4) if cites else None,
        "token_f1": round(float(np.mean([r["token_f1"] for r in answered])), 4) if answered else None,
        "abstention_precision": round(len(true_abst) / len(abstained), 4) if abstained else None,
        "abstention_recall": round(len(true_abst) / len(unans), 4) if unans else None,
        "wrongly_abstained": sum(1 for r in ans if r["abstained"]),
        "wrong_abstention_reasons": dict(Counter(reason_kind(r.get("abstain_reason")) for r in ans if r["abstained"])),
        "fallbacks": sum(1 for r in records if any(n.startswith(("LLM unavailable", "The model's"))
                                                    for n in r["notices"])),
        # answered without calling the configured LLM (extract_first): see rag/answer/extractive.settles
        "settled_without_llm": sum(1 for r in records if any(n.startswith("Answered without the LLM")
                                                              for n in r["notices"])),
        "ttft_ms": {"p50": _pct([r["ttft_ms"] for r in records], 50), "p95": _pct([r["ttft_ms"] for r in records], 95)},
        "total_ms": {"p50": _pct([r["total_ms"] for r in records], 50), "p95": _pct([r["total_ms"] for r in records], 95)},
        "cost_usd": round(sum(r["cost_usd"] or 0 for r in records), 6),
        **figure_summary(records),
    }


def figure_summary(records: list[dict]) -> dict:
    figs = [r for r in records if r.get("kind") in {"figure", "followup"}]
    unrep = [r for r in records if r.get("kind") == "unreported"]
    if not figs and not unrep:
        return {}
    rate = lambda xs, key: round(sum(bool(r.get(key)) for r in xs) / len(xs), 4) if xs else None  # noqa: E731
    return {"figure_first60": rate(figs, "figure_first60"), "wrong_period": rate(figs + unrep, "wrong_period"),
            "unreported_handled": rate(unrep, "unreported_handled"),
            "figure_cases": len(figs), "unreported_cases": len(unrep)}


# -- calibration of the abstention threshold

def best_threshold(evidence: list[float], unanswerable: list[bool]) -> tuple[float, float]:
    """The threshold (abstain below it) with the best abstention F1; ties -> the lower one,
    which abstains less. Candidates are midpoints between observed evidence values."""
    values = sorted(set(evidence))
    candidates = [values[0] - 1e-6] + [(a + b) / 2 for a, b in zip(values, values[1:])] + [values[-1] + 1e-6]
    ev, un = np.asarray(evidence), np.asarray(unanswerable)
    best = (-1.0, candidates[0])
    for t in candidates:
        abst = ev < t
        tp = int((abst & un).sum())
        f1 = 2 * tp / (abst.sum() + un.sum()) if (abst.sum() + un.sum()) else 0.0
        if f1 > best[0] + 1e-12:
            best = (f1, t)
    return float(best[1]), float(best[0])


def leave_one_out(evidence: list[float], unanswerable: list[bool]) -> dict:
    """Each case judged by the threshold fitted on all the others: an honest estimate."""
    decisions = []
    for i in range(len(evidence)):
        t, _ = best_threshold(evidence[:i] + evidence[i + 1:], unanswerable[:i] + unanswerable[i + 1:])
        decisions.append(evidence[i] < t)
    tp = sum(d and u for d, u in zip(decisions, unanswerable))
    return {"abstention_precision": round(tp / max(1, sum(decisions)), 4),
            "abstention_recall": round(tp / max(1, sum(unanswerable)), 4),
            "wrongly_abstained": sum(d and not u for d, u in zip(decisions, unanswerable))}


__all__ = ["best_threshold", "headline", "holds_answer", "leave_one_out", "list_prompt_versions", "list_sets",
           "load_cases", "run_answer_eval", "run_case", "summarise", "token_f1"]


def calibrate(answerer, cases: list[dict], k: int | None = None) -> dict:
    """Fit the abstention threshold on a question set; report its leave-one-out quality."""
    evidence, unanswerable, ids = [], [], []
    for c in cases:
        res = answerer.retriever.search(c["question"], k=k or answerer.settings.answer_k)
        evidence.append(answerer.evidence(c["question"], res.hits)[3])
        unanswerable.append(bool(c["unanswerable"]))
        ids.append(c["id"])
    threshold, f1 = best_threshold(evidence, unanswerable)
    fitted = [e < threshold for e in evidence]
    return {
        "abstain_threshold": round(threshold, 4), "support_threshold": answerer.support_threshold,
        "how": ("abstain when the best question-sentence cosine over the answerer's passages is below the "
                "threshold with the best abstention F1 on the set (unanswerable = positive), ties to the "
                "lower threshold; leave_one_out judges each case by a threshold fitted on the others"),
        "cases": len(cases), "unanswerable": sum(unanswerable), "in_sample_f1": round(f1, 4),
        "in_sample_wrongly_abstained": [i for i, f, u in zip(ids, fitted, unanswerable) if f and not u],
        "leave_one_out": leave_one_out(evidence, unanswerable), "embedder": answerer.embedder.id,
        "index_version": answerer.store.version(),
    }


REPO_ROOT = Path(__file__).resolve().parents[2]
MODES = ("auto", "extractive", "llm")


def case_splits(cases: list[dict]) -> list[str]:
    """The splits a question set's cases are tagged with ("test", "tune"), sorted."""
    return sorted({str(c["split"]) for c in cases if c.get("split")})


def list_sets(settings) -> list[dict]:
    """The question sets a person can evaluate on: every *.jsonl under DATA_DIR/eval/ (the
    Review page's "Add to evaluation set" writes reviewed.jsonl there), then the sets shipped
    with the code (data/eval-sets/*.jsonl, tests/data/*questions*.jsonl) when present.
    Each: {"label", "path", "cases", "splits"}; unreadable files are listed with the reason."""
    found = [(p, "your data") for p in sorted((Path(settings.data_dir) / "eval").glob("*.jsonl"))]
    found += [(p, "shipped") for p in sorted((REPO_ROOT / "data" / "eval-sets").glob("*.jsonl"))]
    found += [(p, "shipped") for p in sorted((REPO_ROOT / "tests" / "data").glob("*questions*.jsonl"))]
    sets, seen = [], set()
    for path, origin in found:
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        try:
            cases = load_cases(path)
        except (RagError, OSError) as e:  # listed, so the person sees why it cannot be picked
            why = e.message if isinstance(e, RagError) else str(e)
            sets.append({"label": f"{path.name} ({origin}; unreadable: {why})", "path": path, "cases": 0,
                         "splits": [], "error": why})
            continue
        splits = case_splits(cases)
        sets.append({"label": f"{path.name} ({origin}, {len(cases)} cases)", "path": path, "cases": len(cases),
                     "splits": splits, "error": None})
    return sets


def list_prompt_versions() -> list[str]:
    """The answer prompts (rag/answer/prompts/answer-vN.toml), oldest first."""
    from rag.answer.prompts import available

    return sorted((v for v in available() if v.startswith("answer-")),
                  key=lambda v: (int(m.group()) if (m := re.search(r"\d+$", v)) else 0, v))


def headline(summary: dict) -> str:
    """A run's main figures in one line."""
    def pct(key: str) -> str:
        return "n/a" if summary.get(key) is None else f"{summary[key]:.0%}"

    f1 = "n/a" if summary.get("token_f1") is None else f"{summary['token_f1']:.2f}"
    return (f"{summary['cases']} cases: hit@k {pct('hit_at_k')}, verified on target {pct('verified_on_target')}, "
            f"citation precision {pct('citation_precision')}, token F1 {f1}, "
            f"abstention recall {pct('abstention_recall')}")


def run_answer_eval(settings, set_path: Path, split: str | None = None, limit: int | None = None,
                    mode: str = "auto", prompt_version: str | None = None, progress=None) -> tuple[dict, Path]:
    """Answer every case of a question set, score it, and store the run as
    DATA_DIR/eval_runs/<UTC time>-<prompt version>.json (what the Evaluate page compares).

    mode: "auto" uses the LLM when one is configured (RAG_LLM_BASE_URL), "extractive" never
    does, "llm" requires one. progress(done, total, case_id) is called after each case.
    Returns (run, stored path)."""
    from dataclasses import replace

    from rag.answer import Answerer

    if mode not in MODES:
        raise RagError(f"unknown answerer mode {mode!r}; use one of {', '.join(MODES)}")
    if mode == "llm" and not settings.llm_base_url:
        raise RagError("no LLM is configured, so an LLM evaluation cannot run: set RAG_LLM_BASE_URL to an "
                       "OpenAI-compatible endpoint (e.g. `make llm`), or evaluate the extractive answerer")
    overrides = {"answer_cache": False}  # every case answered afresh, as the run records
    if prompt_version:
        overrides["prompt_version"] = prompt_version
    if mode == "extractive":
        overrides["llm_base_url"] = None  # Answerer builds no LLM client without a base URL
    settings = replace(settings, **overrides)
    set_path = Path(set_path)
    cases = load_cases(set_path)
    if split:
        splits = case_splits(cases)
        cases = [c for c in cases if c.get("split") == split]
        if not cases:
            hint = f"its splits: {', '.join(splits)}" if splits else "it has no splits, so run it without one"
            raise RagError(f"{set_path.name} has no cases in split {split!r}; {hint}")
    cases = cases[: limit or None]
    answerer = Answerer(settings)
    answerer.retriever.search("warm up", k=1)
    records = []
    for i, case in enumerate(cases, 1):
        records.append(run_case(answerer, case))
        if progress is not None:
            progress(i, len(cases), case["id"])
    run = {"set": str(set_path), "split": split, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "config": {"prompt_version": answerer.prompt.version, "prompt_sha": answerer.prompt.sha,
                      "llm": answerer.llm_label, "embedder": answerer.embedder.id,
                      "reranker": answerer.retriever.reranker_name, "index_version": answerer.store.version(),
                      "answer_k": settings.answer_k, "abstain_threshold": answerer.abstain_threshold,
                      "support_threshold": answerer.support_threshold},
           "summary": summarise(records), "records": records}
    runs = Path(settings.data_dir) / "eval_runs"
    runs.mkdir(parents=True, exist_ok=True)
    base = f"{run['created_at'].replace(':', '')}-{answerer.prompt.version}"
    stored, n = runs / f"{base}.json", 1
    while stored.exists():  # two runs within one second keep both
        n += 1
        stored = runs / f"{base}-{n}.json"
    tmp = stored.with_name(f".{stored.name}.tmp")
    tmp.write_text(json.dumps(run, indent=1, default=str))
    tmp.replace(stored)
    return run, stored


def answers_main(argv: list[str]) -> int:
    """`python -m rag.eval answers --set FILE --data-dir DIR [--docs PATH...] [--json]`."""
    import argparse
    import sys

    from rag.config import Settings

    ap = argparse.ArgumentParser(prog="python -m rag.eval answers")
    ap.add_argument("--set", type=Path, required=True, help="JSONL question set")
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--docs", type=Path, nargs="*", help="ingest these first (a no-op when already indexed)")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--split", help="only the cases of this split (e.g. tune or test)")
    ap.add_argument("--prompt-version")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", type=Path, help="also write the run (config, summary, per-case records) here")
    args = ap.parse_args(argv)
    try:
        settings = Settings.load(data_dir=args.data_dir, prompt_version=args.prompt_version, answer_cache=False)
        if args.docs:
            from ingest.pipeline import ingest_paths

            ingest_paths(args.docs, settings, progress=None)
        run, stored = run_answer_eval(settings, args.set, split=args.split, limit=args.limit)
    except RagError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(run, indent=1, default=str))
    if args.json:
        print(json.dumps({"config": run["config"], "summary": run["summary"], "stored": str(stored)}))
    else:
        print(f"{args.set.name}: {len(run['records'])} cases, {run['config']['llm']}, "
              f"prompt {run['config']['prompt_version']}")
        for k, v in run["summary"].items():
            print(f"  {k:<22} {v}")
        print(f"run stored in {stored}")
    return 0


def calibrate_main(argv: list[str]) -> int:
    """`python -m rag.eval calibrate --set FILE --data-dir DIR`: writes DATA_DIR/calibration.json."""
    import argparse
    import sys

    from rag.config import Settings

    ap = argparse.ArgumentParser(prog="python -m rag.eval calibrate")
    ap.add_argument("--set", type=Path, required=True)
    ap.add_argument("--data-dir", type=Path)
    args = ap.parse_args(argv)
    try:
        from rag.answer import Answerer

        settings = Settings.load(data_dir=args.data_dir, answer_cache=False)
        answerer = Answerer(settings)
        result = calibrate(answerer, load_cases(args.set))
    except RagError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2
    result["set"] = str(args.set)
    path = Path(settings.data_dir) / "calibration.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[answerer.embedder.id] = result
    path.write_text(json.dumps(data, indent=1))
    print(json.dumps(result, indent=1))
    print(f"written to {path}; answers from this data folder now use it", file=sys.stderr)
    return 0


def outcome(record: dict) -> str:
    """One word per case, for spotting what changed between two runs."""
    if record["unanswerable"]:
        return "abstained (right)" if record["abstained"] else "answered (should abstain)"
    if record["abstained"]:
        return "abstained (wrong)"
    if any(c["verified"] and c["on_target"] for c in record["citations"]):
        return "cited right page"
    return "answered, no verified citation on target" if record["citations"] else "answered, uncited"


def list_runs(data_dir: Path) -> list[Path]:
    folder = Path(data_dir) / "eval_runs"
    return sorted(folder.glob("*.json"), reverse=True) if folder.is_dir() else []


def load_run(path: Path) -> dict:
    try:
        run = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise RagError(f"cannot read evaluation run {path}: {e}") from e
    if not {"config", "summary", "records"} <= set(run):
        raise RagError(f"{path} is not an evaluation run (config, summary and records expected)")
    return run


def compare(a: dict, b: dict) -> dict:
    """Side-by-side metrics and the cases whose outcome changed from run a to run b."""
    flat = lambda s: {k: (v["p50"] if isinstance(v, dict) and "p50" in v else v) for k, v in s.items()}  # noqa: E731
    sa, sb = flat(a["summary"]), flat(b["summary"])
    # figures only: counts by reason (a dict) are in each run, not side by side
    metrics = [{"metric": k, "a": sa.get(k), "b": sb.get(k)} for k in sa if not isinstance(sa[k], (list, dict))]
    rb = {r["id"]: r for r in b["records"]}
    changed = []
    for r in a["records"]:
        other = rb.get(r["id"])
        if other is None:
            continue
        oa, ob = outcome(r), outcome(other)
        if oa != ob or abs((r.get("token_f1") or 0) - (other.get("token_f1") or 0)) >= 0.2:
            changed.append({"id": r["id"], "a": oa, "b": ob, "answer_a": r["answer"], "answer_b": other["answer"],
                            "f1_a": r.get("token_f1"), "f1_b": other.get("token_f1")})
    config = [{"setting": k, "a": a["config"].get(k), "b": b["config"].get(k)}
              for k in sorted(set(a["config"]) | set(b["config"]))]
    return {"metrics": metrics, "config": config, "changed": changed}
