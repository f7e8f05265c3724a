"""Shared page helpers: one Service per process, plain-text rendering, the sidebar."""
from __future__ import annotations

import re

import streamlit as st

from rag.answer.citations import quote_spans, reflow
from rag.config import Settings
from rag.errors import RagError
from rag.service import Service

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def plain(text: str) -> str:
    """Document or user text made inert for st.markdown: no HTML, links, images or formatting."""
    return _MD_SPECIAL.sub(r"\\\1", text or "").replace("\n", "  \n")


def highlighted(text: str, quotes: list[str]) -> str:
    """A passage for st.markdown with its quoted units highlighted; its lines (table rows) kept."""
    text = reflow(text)
    parts, pos = [], 0
    for a, b in quote_spans(text, quotes):
        parts += [plain(text[pos:a]), f":orange-background[{plain(' '.join(text[a:b].split()))}]"]
        pos = b
    parts.append(plain(text[pos:]))
    return "".join(parts)


def service() -> Service:
    """One per server process and settings: models and indexes load once and are shared by all
    sessions; chat history lives in each browser session's st.session_state, never here."""
    return _service(Settings.load())


@st.cache_resource(show_spinner="Loading the index and models...")
def _service(settings: Settings) -> Service:
    return Service(settings)


def sidebar() -> None:
    try:
        status = service().status()
    except RagError as e:
        st.sidebar.error(e.message)
        return
    sb = st.sidebar
    sb.caption("Index")
    c1, c2, c3 = sb.columns(3)
    c1.metric("Docs", status["documents"])
    c2.metric("Chunks", status["chunks"])
    c3.metric("Version", status["index_version"])
    sb.caption(f"LLM: {status['llm']}  \nReranker: {status['reranker']}")
    for note in status["notices"]:
        sb.info(note, icon=":material/info:")
