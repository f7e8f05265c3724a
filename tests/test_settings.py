from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import Settings
from rag.errors import RagError


def test_defaults_env_and_secrets(tmp_path, monkeypatch):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('RAG_MAX_FILE_MB = 5\nRAG_EMBEDDER = "openai"\n')
    monkeypatch.setenv("RAG_EMBEDDER", "minilm")  # the environment wins over secrets.toml
    s = Settings.load(secrets_file=secrets)
    assert s.max_file_mb == 5.0 and s.max_file_bytes == 5 * 1024 * 1024 and s.embedder == "minilm"
    assert Settings.load(secrets_file=tmp_path / "none.toml", data_dir=Path("x")).data_dir == Path("x")


def test_bad_values_say_which_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_MAX_FILE_MB", "lots")
    with pytest.raises(RagError, match="RAG_MAX_FILE_MB"):
        Settings.load(secrets_file=tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    monkeypatch.delenv("RAG_MAX_FILE_MB")
    with pytest.raises(RagError, match="not valid TOML"):
        Settings.load(secrets_file=bad)
