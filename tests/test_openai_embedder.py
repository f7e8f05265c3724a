"""The OpenAI-compatible embeddings path, against a real HTTP server on loopback."""
from __future__ import annotations

import numpy as np
import pytest

from ingest.pipeline import ingest_paths
from rag.embed import OpenAIEmbedder
from rag.errors import EmbedderMismatch, EmbedderUnavailable
from rag.store import LocalStore
from tests.conftest import write_docs
from tests.embed_server import serve


@pytest.fixture(scope="module")
def server(embedder):
    srv = serve(embedder)
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


def test_same_vectors_as_local_model_in_batches(server, embedder):
    remote = OpenAIEmbedder(server, "minilm-test", batch_size=3)
    texts = [f"sentence number {i} about rivers" for i in range(8)]
    got = remote.embed(texts)
    assert got.shape == (8, 384) and remote.dim == 384 and remote.id == "openai:minilm-test"
    np.testing.assert_allclose(got, embedder.embed(texts), atol=1e-5)  # order kept across batches


def test_index_built_remotely_refuses_local_embedder(server, embedder, tmp_path, settings):
    docs = write_docs(tmp_path / "docs", 2)
    report = ingest_paths(docs, settings, embedder=OpenAIEmbedder(server, "minilm-test"))
    assert report.counts() == {"indexed": 2}
    assert LocalStore(settings.data_dir).meta("embedder_id") == "openai:minilm-test"
    more = write_docs(tmp_path / "more", 1, prefix="more")
    with pytest.raises(EmbedderMismatch, match="openai:minilm-test"):
        ingest_paths(more, settings, embedder=embedder)


def test_clear_error_when_endpoint_is_wrong(server):
    with pytest.raises(EmbedderUnavailable, match="RAG_EMBED_MODEL"):
        OpenAIEmbedder(server, "no-such-model").embed(["x"])
    with pytest.raises(EmbedderUnavailable, match="127.0.0.1:9"):
        OpenAIEmbedder("http://127.0.0.1:9/v1", "m", timeout_s=2).embed(["x"])
