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
