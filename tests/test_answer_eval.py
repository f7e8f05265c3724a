"""The answer evaluation on the shipped sample set, as a regression gate (embedded answerer).

Fails when a metric falls below the committed baseline by more than the stated tolerance
(tests/data/samples_eval_baseline.json). After an intended change, refresh the baseline with
the figures printed by `python -m rag.eval answers --set data/eval-sets/samples.jsonl ...`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, SAMPLES

SET = ROOT / "data" / "eval-sets" / "samples.jsonl"
BASELINE = json.loads((ROOT / "tests" / "data" / "samples_eval_baseline.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory, sample_pdf):
    data = tmp_path_factory.mktemp("eval-data")
    env = {**os.environ, "RAG_LLM_BASE_URL": ""}
    out = []
    for prompt in ("answer-v1", "answer-v2"):
        proc = subprocess.run([sys.executable, "-m", "rag.eval", "answers", "--set", str(SET), "--data-dir", str(data),
                               "--docs", str(SAMPLES / "user-guide.md"), str(sample_pdf), "--prompt-version", prompt,
                               "--json"], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return data, out


def test_shipped_set_does_not_regress(runs):
    _, (result, _) = runs
    s, b = result["summary"], BASELINE["summary"]
    n_ans, n_un = b["answerable"], b["unanswerable"]
    assert s["answerable"] == n_ans and s["unanswerable"] == n_un
    for metric, denominator in [("verified_on_target", n_ans), ("hit_at_k", n_ans), ("citation_precision", n_ans),
                                ("abstention_recall", n_un)]:
        assert s[metric] >= b[metric] - 1 / denominator - 1e-9, f"{metric}: {s[metric]} vs baseline {b[metric]}"
    assert s["wrongly_abstained"] <= b["wrongly_abstained"] + 1
    assert s["token_f1"] >= b["token_f1"] - 0.05
    assert result["config"]["llm"].startswith("none") and result["config"]["prompt_version"] == "answer-v1"


def test_runs_are_stored_with_their_configuration_and_compared(runs):
    from rag.answer.evaluate import compare, list_runs, load_run

    data, (a, b) = runs
    stored = list_runs(data)
    assert len(stored) == 2
    run_b, run_a = (load_run(p) for p in stored)
    assert {run_a["config"]["prompt_version"], run_b["config"]["prompt_version"]} == {"answer-v1", "answer-v2"}
    diff = compare(run_a, run_b)
    assert any(row["setting"] == "prompt_version" and row["a"] != row["b"] for row in diff["config"])
    assert {m["metric"] for m in diff["metrics"]} >= {"verified_on_target", "abstention_recall", "ttft_ms"}


def test_evaluate_page_shows_two_runs(runs, monkeypatch):
    from streamlit.testing.v1 import AppTest

    data, _ = runs
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("RAG_DATA_DIR", str(data))
    monkeypatch.setenv("RAG_LLM_BASE_URL", "")
    at = AppTest.from_file(str(ROOT / "pages" / "evaluate.py"), default_timeout=120).run()
    assert not at.exception
    assert [s.value for s in at.subheader][:2] == ["Configuration", "Metrics"]
    assert "answer-v2" in at.dataframe[0].value.to_string()


# -- runs started from the library (what the Evaluate page calls)

PLANT_CASES = [
    {"id": "plants-1", "question": "How often does the office ficus need watering?", "answer": "every Tuesday",
     "unanswerable": False, "source": "plants.md", "page": 1, "split": "tune"},
    {"id": "plants-2", "question": "How often is the snake plant in the lobby watered?", "answer": "once a month",
     "unanswerable": False, "source": "plants.md", "page": 1, "split": "test"},
    {"id": "plants-3", "question": "What is the population of the capital of Mongolia?", "answer": None,
     "unanswerable": True, "split": "test"},
]


def write_set(path, cases=PLANT_CASES):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(c) + "\n" for c in cases))
    return path


@pytest.fixture(scope="module")
def plants_data(tmp_path_factory):
    from tests.conftest import index_plants

    return index_plants(tmp_path_factory.mktemp("docs"), tmp_path_factory.mktemp("plants-data"))


def test_run_answer_eval_extractive_stores_a_run_and_reports_progress(plants_data, tmp_path):
    from rag.answer.evaluate import list_runs, load_run, run_answer_eval
    from rag.config import Settings

    before = set(list_runs(plants_data))
    # An LLM is configured (at a port nothing listens on): extractive mode must not use it.
    settings = Settings.load(data_dir=plants_data, llm_base_url="http://127.0.0.1:9/v1")
    calls = []
    run, stored = run_answer_eval(settings, write_set(tmp_path / "plants.jsonl"), mode="extractive",
                                  prompt_version="answer-v2", progress=lambda *a: calls.append(a))
    assert calls == [(1, 3, "plants-1"), (2, 3, "plants-2"), (3, 3, "plants-3")]
    assert stored.parent == plants_data / "eval_runs" and stored.is_file()
    assert set(list_runs(plants_data)) - before == {stored}
    saved = load_run(stored)
    assert [r["id"] for r in saved["records"]] == ["plants-1", "plants-2", "plants-3"]
    assert saved["config"]["llm"].startswith("none") and saved["config"]["prompt_version"] == "answer-v2"
    assert not any(n.startswith("LLM unavailable") for r in saved["records"] for n in r["notices"])
    assert saved["summary"]["cases"] == 3 and saved["summary"]["hit_at_k"] == 1.0
    assert "every Tuesday" in saved["records"][0]["answer"]
    mongolia = saved["records"][2]
    assert mongolia["abstained"] and mongolia["abstain_reason"], "an abstention keeps the reason it was made"


def test_run_answer_eval_split_and_limit(plants_data, tmp_path):
    from rag.answer.evaluate import run_answer_eval
    from rag.config import Settings
    from rag.errors import RagError

    settings = Settings.load(data_dir=plants_data)
    path = write_set(tmp_path / "plants.jsonl")
    run, _ = run_answer_eval(settings, path, split="test", limit=1, mode="extractive")
    assert [r["id"] for r in run["records"]] == ["plants-2"] and run["split"] == "test"
    with pytest.raises(RagError, match="no cases in split 'dev'.*test, tune"):
        run_answer_eval(settings, path, split="dev", mode="extractive")


def test_llm_mode_without_an_llm_is_refused(settings, tmp_path):
    from dataclasses import replace

    from rag.answer.evaluate import list_runs, run_answer_eval
    from rag.errors import RagError

    no_llm = replace(settings, llm_base_url=None)
    with pytest.raises(RagError, match="no LLM is configured.*RAG_LLM_BASE_URL"):
        run_answer_eval(no_llm, write_set(tmp_path / "plants.jsonl"), mode="llm")
    with pytest.raises(RagError, match="unknown answerer mode"):
        run_answer_eval(no_llm, tmp_path / "plants.jsonl", mode="fast")
    assert list_runs(settings.data_dir) == []


def test_list_sets_offers_reviewed_and_shipped_sets_and_answer_prompts(settings):
    from rag.answer.evaluate import list_prompt_versions, list_sets

    write_set(settings.data_dir / "eval" / "reviewed.jsonl")
    (settings.data_dir / "eval" / "broken.jsonl").write_text("not json\n")
    sets = list_sets(settings)
    by_name = {s["path"].name: s for s in sets}
    assert sets[0]["path"] == settings.data_dir / "eval" / "broken.jsonl"  # the data dir's sets come first
    assert by_name["reviewed.jsonl"]["cases"] == 3 and by_name["reviewed.jsonl"]["splits"] == ["test", "tune"]
    assert "reviewed.jsonl" in by_name["reviewed.jsonl"]["label"] and "3 cases" in by_name["reviewed.jsonl"]["label"]
    assert by_name["broken.jsonl"]["error"] and "unreadable" in by_name["broken.jsonl"]["label"]
    assert {"real_questions.jsonl", "financial_questions.jsonl", "samples.jsonl"} <= set(by_name)
    assert by_name["financial_questions.jsonl"]["splits"] == ["test", "tune"]
    versions = list_prompt_versions()
    assert versions[:2] == ["answer-v1", "answer-v2"] and all(v.startswith("answer-") for v in versions)


def test_a_figure_printed_more_precisely_counts_but_a_small_one_rounded_does_not():
    from rag.answer.evaluate import figure_outcome

    case = {"kind": "figure", "answer": "19,208", "wrong_answers": ["23,223"]}
    assert figure_outcome(case, "Total revenues, 2020: 19,207.8 (in millions) [1]", False)["figure_first60"]
    assert not figure_outcome(case, "Total revenues, 2020: 19,206.8 (in millions) [1]", False)["figure_first60"]
    small = {"kind": "figure", "answer": "2", "wrong_answers": []}
    assert not figure_outcome(small, "Growth was 1.6 [1]", False)["figure_first60"]
    assert figure_outcome(small, "Growth was 2 [1]", False)["figure_first60"]


def test_abstention_reasons_are_counted_without_their_figures():
    from rag.answer.evaluate import reason_kind

    assert reason_kind("evidence 0.412 below the calibrated threshold 0.503") == "evidence below the calibrated threshold"
    assert (reason_kind("the asked period (three months ended June 30, 2023) is not among the columns of the best rows")
            == "the asked period is not among the columns of the best rows")
    assert reason_kind(None) == "unrecorded"
