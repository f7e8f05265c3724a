"""Retrieval metrics against hand-computed values, and the BEIR loader on a tiny dataset."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from rag.eval import doc_ranking, load_beir, metrics, mrr_at, ndcg_at, recall_at
from tests.conftest import ROOT


def test_metrics_by_hand():
    rels = {"a": 1, "c": 1}
    ranked = ["b", "a", "d", "c"]
    assert ndcg_at(ranked, rels) == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3)))
    assert recall_at(ranked, rels, 2) == 0.5 and recall_at(ranked, rels, 10) == 1.0
    assert mrr_at(ranked, rels) == 0.5 and mrr_at(["x"], rels) == 0.0
    assert metrics({"q": ["a", "c"]}, {"q": rels})["ndcg@10"] == 1.0


def test_document_score_is_its_best_chunk():
    assert doc_ranking([5, 3, 7, 4], {5: "d1", 3: "d2", 7: "d1", 4: "d3"}) == ["d1", "d2", "d3"]


def test_eval_cli_on_a_tiny_beir_dataset(tmp_path):
    ds = tmp_path / "tiny"
    (ds / "qrels").mkdir(parents=True)
    docs = {"d1": "Otters hold hands while they sleep so they do not drift apart.",
            "d2": "Honey bees communicate the location of flowers with a waggle dance.",
            "d3": "Glaciers carve U-shaped valleys as they move downhill over centuries."}
    (ds / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n" for k, v in docs.items()))
    (ds / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "how do bees tell others where flowers are"}) + "\n"
                                      + json.dumps({"_id": "q2", "text": "why do otters hold hands"}) + "\n")
    (ds / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td2\t1\nq2\td1\t1\n")
    queries, qrels = load_beir(ds, "test")
    assert queries == {"q1": "how do bees tell others where flowers are", "q2": "why do otters hold hands"}
    out = subprocess.run([sys.executable, "-m", "rag.eval", "retrieval", "--dataset", str(ds), "--data-dir",
                          str(tmp_path / "data"), "--json"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["queries"] == 2 and report["reranker"] == "none"
    assert report["metrics"]["fused"]["ndcg@10"] == 1.0 and report["metrics"]["bm25"]["mrr@10"] > 0
    assert {"dense", "bm25", "fuse", "total"} <= set(report["latency_ms"])
