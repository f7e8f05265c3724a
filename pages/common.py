"""Shared page helpers: one Service per process, plain-text rendering, the sidebar, who is asking."""
from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Callable

import streamlit as st

from rag.answer.citations import quote_spans, reflow
from rag.config import Settings
from rag.errors import RagError
from rag.service import Service
from rag.status import short_count

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")
BROWSER_COOKIE = "docchat_browser"
_BROWSER_ID = re.compile(r"[0-9a-f]{32}")


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


def owner() -> str:
    """Whose conversations these are: the logged-in user (OIDC login), else this browser.

    A browser is known by a random id in a first-party cookie, set here on its first visit."""
    ss = st.session_state
    if "owner" not in ss:
        browser = st.context.cookies.get(BROWSER_COOKIE, "")
        if not isinstance(browser, str) or not _BROWSER_ID.fullmatch(browser):
            browser = ss["new_browser_id"] = uuid.uuid4().hex
        ss["owner"] = f"browser:{browser}"
    if ss.get("new_browser_id"):  # (re)sent on every run of this session: the cookie lands once JS runs
        st.html(f"<script>document.cookie = '{BROWSER_COOKIE}={ss['new_browser_id']}; path=/; "
                "max-age=31536000; SameSite=Lax';</script>", unsafe_allow_javascript=True)
    return ss["owner"]


def file_labels(sources: list[str]) -> list[str]:
    """Documents named for people: the file name, numbered when two share one (no server paths)."""
    names = [Path(s).name for s in sources]
    dup, seen, out = Counter(names), Counter(), []
    for n in names:
        seen[n] += 1
        out.append(n if dup[n] == 1 else f"{n} ({seen[n]})")
    return out


def flash(message: str | None = None, seconds: float = 10.0) -> None:
    """Show a success message across the reruns of the next few seconds: an action that ends in
    st.rerun (or a dialog closing, which reruns again) would otherwise never show its result."""
    ss = st.session_state
    if message is not None:
        ss["flash"] = (message, time.monotonic() + seconds)
    elif "flash" in ss:
        text, until = ss["flash"]
        if time.monotonic() > until:
            del ss["flash"]
        else:
            st.success(text, icon=":material/check_circle:")


def sidebar() -> tuple[dict | None, Callable[[], dict | None]]:
    """Draw the index status in the sidebar. Returns the status drawn (None when it could not
    be read; the sidebar says why) and a function that redraws it in place (call it after an
    upload or a delete, so counts are never stale)."""
    slot = st.sidebar.empty()

    def draw() -> dict | None:
        with slot.container():
            return _status_box()

    return draw(), draw


def _status_box() -> dict | None:
    try:
        status = service().status()
    except RagError as e:
        st.error(e.message)
        return None
    st.caption("Index")
    c1, c2, c3 = st.columns(3)
    c1.metric("Docs", short_count(status["documents"]), help=f"{status['documents']:,} documents")
    c2.metric("Chunks", short_count(status["chunks"]), help=f"{status['chunks']:,} chunks")
    c3.metric("Version", status["index_version"])
    st.caption(f"LLM: {status['llm']}  \nReranker: {status['reranker']}")
    for note in status["notices"]:
        st.info(note, icon=":material/info:")
    return status
