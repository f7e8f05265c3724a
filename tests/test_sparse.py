"""BM25: bm25s engine, parity with rank_bm25's BM25Okapi, and a pickle-free saved format."""
from __future__ import annotations

import json

import numpy as np
from rank_bm25 import BM25Okapi

from rag.store.sparse import SparseIndex, analyse

CORPUS = [
    "The pilot reported a loss of engine power shortly after takeoff from the runway.",
    "Engine failure during the climb; the airplane landed in a field.",
    "The agency's strategic plan sets goals for clean water and clean air.",
    "Participants in the clinical trial received the study drug or a placebo.",
    "Runway incursions are reviewed by the safety board every year.",
    "Clean energy investments reduce air pollution in communities.",
    "The study protocol describes randomisation and the statistical analysis plan.",
    "Weather at the airport included low clouds and gusting winds.",
    "Water infrastructure grants support drinking water systems.",
    "The drug was well tolerated; adverse events were mild.",
]
QUERIES = ["engine power loss after takeoff", "clean water plan", "clinical trial placebo drug",
           "runway safety board", "statistical analysis", "air pollution clean energy"]


def test_parity_with_rank_bm25():
    tokens = [analyse(t) for t in CORPUS]
    ours = SparseIndex.build(tokens, np.arange(100, 100 + len(CORPUS)), method="robertson", k1=1.5, b=0.75)
    reference = BM25Okapi(tokens, k1=1.5, b=0.75, epsilon=0.25)
    for q in QUERIES:
        terms = analyse(q)
        ref_scores = reference.get_scores(terms)
        vids, scores = ours.search(terms, k=len(CORPUS))
        ref_order = [100 + i for i in np.argsort(-ref_scores, kind="stable") if ref_scores[i] > 0]
        assert list(vids) == ref_order, q
        # bm25s leaves out BM25Okapi's constant (k1 + 1) numerator factor: same ranking, scaled scores.
        np.testing.assert_allclose(scores * (1.5 + 1), ref_scores[vids - 100], rtol=1e-4)


def test_save_load_roundtrip_without_pickles(tmp_path):
    tokens = [analyse(t) for t in CORPUS]
    index = SparseIndex.build(tokens, np.arange(len(CORPUS)) * 7)
    index.save(tmp_path / "sparse")
    for npy in (tmp_path / "sparse").glob("*.npy"):
        np.load(npy, allow_pickle=False)  # raises if anything was pickled
    assert json.loads((tmp_path / "sparse" / "sparse.json").read_text())["format"] == SparseIndex.FORMAT
    loaded = SparseIndex.load(tmp_path / "sparse")
    for q in QUERIES:
        a, b = index.search(analyse(q), 5), loaded.search(analyse(q), 5)
        assert list(a[0]) == list(b[0])
        np.testing.assert_allclose(a[1], b[1])


def test_unknown_terms_and_empty_index():
    index = SparseIndex.build([analyse(t) for t in CORPUS], np.arange(len(CORPUS)))
    assert len(index.search(analyse("zzzqqq xylophone"), 5)[0]) == 0
    assert len(SparseIndex.build([], np.zeros(0)).search(["engin"], 5)[0]) == 0


def test_analyse_stems_and_drops_stop_words():
    assert analyse("The Engines are running") == ["engin", "run"]  # Lucene's English stop list
