"""Tuning the packaged MiniLM on questions with known sources (rag/tune.py), real model and index."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from rag.config import Settings
from rag.embed import MINILM_ID, MiniLMEmbedder
from rag.errors import RagError
from rag.store import LocalStore
from rag.tune import Example, examples_from_set, main, mine_pairs
from tests.conftest import ROOT

SHIPPED_SET = ROOT / "data" / "eval-sets" / "samples.jsonl"


@pytest.fixture(scope="module")
def tuned(plants_index, tmp_path_factory):
    """A model tuned through the CLI on the shipped evaluation set (its answerable cases)."""
    out = tmp_path_factory.mktemp("models") / "tuned"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        # one batch holding every pair, several epochs at a high rate: the loss must fall
        rc = main(["--data-dir", str(plants_index), "--set", str(SHIPPED_SET), "--out", str(out),
                   "--epochs", "3", "--lr", "1e-4", "--batch-size", "64"])
    assert rc == 0
    return out, json.loads(buf.getvalue().splitlines()[0])


def test_pairs_come_from_the_expected_document_and_contrast_with_another(plants_index, embedder):
    store = LocalStore(plants_index)
    examples = [Example("How often is the ficus watered?", (("plants.md", 1),)),
                Example("How do I delete a document?", (("user-guide.md", None),)),
                Example("What is in the missing report?", (("missing.pdf", 3),))]
    pairs, skipped = mine_pairs(store, embedder, examples)
    assert [p[0] for p in pairs] == [examples[0].question, examples[1].question]
    assert "ficus" in pairs[0][1] and "ficus" not in pairs[0][2]  # positive from plants.md, negative not
    assert "Office plants" not in pairs[1][1] and "delete" in pairs[1][1].lower()
    assert len(skipped) == 1 and "missing report" in skipped[0] and "not in the index" in skipped[0]


def test_pairs_are_mined_from_either_backend(tmp_path, store_backend, settings, embedder):
    from ingest.pipeline import ingest_paths
    from tests.conftest import store_at, write_docs

    docs = write_docs(tmp_path / "docs", 3, words=60)
    ingest_paths(docs, settings, embedder=embedder)
    store = store_at(settings.data_dir)
    examples = [Example("What is doc 1 about? topic1", ((docs[1].name, None),))]
    pairs, skipped = mine_pairs(store, embedder, examples)
    assert not skipped and len(pairs) == 1
    assert "topic1" in pairs[0][1] and "topic1" not in pairs[0][2]


def test_tuning_writes_a_model_with_its_own_id_and_a_report(tuned, embedder):
    out, report = tuned
    cases = examples_from_set(SHIPPED_SET)
    assert report["examples"] == len(cases) and report["pairs"] == len(cases) - len(report["skipped"])
    assert report["pairs"] >= 8 and report["base"] == MINILM_ID
    assert report["model_id"].startswith("minilm-tuned:")
    saved = json.loads((out / "tune.json").read_text())
    assert saved["model_id"] == report["model_id"] and saved["source"].startswith(str(SHIPPED_SET))
    losses = saved["losses"]
    assert len(losses) == 3 and losses[-1] < losses[0], losses  # same batch each epoch: it learned
    tuned_emb = MiniLMEmbedder(model_folder=out)
    assert tuned_emb.id == report["model_id"]
    q = "How do I remove a document from every index?"
    a, b = embedder.embed([q])[0], tuned_emb.embed([q])[0]
    assert abs(float(np.linalg.norm(b)) - 1.0) < 1e-4 and float(a @ b) < 0.9999  # a different model


def test_an_index_built_with_the_tuned_model_records_it_and_the_old_index_refuses_it(tuned, tmp_path, plants_index):
    from ingest.pipeline import ingest_paths
    from rag.factory import build_retriever

    out, report = tuned
    settings = Settings.load(data_dir=tmp_path / "tuned-index", embed_model=str(out))
    result = ingest_paths([ROOT / "data" / "samples" / "user-guide.md"], settings, progress=None)
    assert not result.failed
    store = LocalStore(settings.data_dir)
    assert store.meta("embedder_id") == report["model_id"]
    hits = build_retriever(settings).search("How do I remove a document from every index?", k=3).hits
    assert hits and "delete" in " ".join(h.chunk.text.lower() for h in hits)
    with pytest.raises(RagError, match="was built with embedder"):
        LocalStore(plants_index).check_embedder(report["model_id"], 384)


def test_bad_requests_get_clear_messages(tuned, plants_index, tmp_path, capsys):
    out, _ = tuned
    assert main(["--data-dir", str(plants_index), "--set", str(SHIPPED_SET), "--out", str(out)]) == 1
    assert "already holds a model" in capsys.readouterr().err
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"id": "x", "question": "How often is the ficus watered?",
                               "unanswerable": False, "source": "plants.md", "page": 1}) + "\n")
    assert main(["--data-dir", str(plants_index), "--set", str(one), "--out", str(tmp_path / "m")]) == 1
    assert "at least 2 questions" in capsys.readouterr().err
    assert main(["--data-dir", str(tmp_path / "empty"), "--set", str(SHIPPED_SET), "--out", str(tmp_path / "m2")]) == 1
    assert "is empty" in capsys.readouterr().err
    with pytest.raises(RagError, match="not a tuned embedding model"):
        MiniLMEmbedder(model_folder=tmp_path)
    assert not (tmp_path / "m").exists() and not (tmp_path / "m2").exists()
