"""Chat: ask -> stream the answer -> cite -> rate. Conversations are stored in the app's
database, per user (login) or per browser, and listed in the sidebar."""
from itertools import chain
from pathlib import Path

import pandas as pd
import streamlit as st

from pages.common import highlighted, owner, plain, service, sidebar
from rag.errors import RagError

ss = st.session_state
me = owner()
ss.setdefault("open", None)  # (turn index, passage n) to show in the source dialog


# -- which conversation: this session's, else the one named in the URL (a reload), else a new one
def current_conversation() -> dict | None:
    cid = ss.get("conversation") or st.query_params.get("c")
    conv = service().conversation(cid, me) if cid else None
    ss["conversation"] = conv["id"] if conv else None
    if conv is None and "c" in st.query_params:
        del st.query_params["c"]
    return conv


def open_conversation(cid: str | None) -> None:
    ss["conversation"], ss["open"] = cid, None
    if cid:
        st.query_params["c"] = cid
    elif "c" in st.query_params:
        del st.query_params["c"]


conv = current_conversation()
turns = conv["turns"] if conv else []

with st.sidebar:
    st.button("New chat", icon=":material/add:", on_click=open_conversation, args=(None,), width="stretch")
    if chats := service().conversations(me):
        st.caption("Your conversations")
    for c in chats:
        label = c["title"] if len(c["title"]) <= 48 else c["title"][:46].rstrip() + "…"
        st.button(label, key=f"conv-{c['id']}", on_click=open_conversation, args=(c["id"],), help=c["title"],
                  type="primary" if conv and c["id"] == conv["id"] else "tertiary", width="stretch")
status, _ = sidebar()


def drop_pending() -> None:
    ss.pop("delete_conversation", None)


@st.dialog("Delete this conversation?", on_dismiss=drop_pending)
def confirm_delete(cid: str, title: str) -> None:
    st.write(plain(f"“{title}” and its questions and answers leave your chat list. "
                   "Answers stay in the review log."))
    c1, c2 = st.columns(2)
    if c1.button("Delete", type="primary"):
        drop_pending()
        service().delete_conversation(cid, me)
        open_conversation(None)
        st.rerun()
    if c2.button("Cancel"):
        drop_pending()
        st.rerun()


def save_rating(answer_id: str, key: str) -> None:
    value = ss.get(key)
    service().feedback(answer_id, rating=None if value is None else (1 if value == 1 else -1))
    st.toast("Rating saved")


def open_source(turn: int, n: int) -> None:
    ss["open"] = (turn, n)


def citation_label(c: dict) -> str:
    flag = "verified" if c["verified"] else "not verified"
    if c["inferred"]:
        flag += ", inferred"
    return f"[{c['n']}] {Path(c['source']).name} p.{c['page']} ({flag})"


def render_answer(i: int, a: dict) -> None:
    st.markdown(plain(a["answer"]))
    for note in a["notices"]:
        st.caption(plain(note))
    if a["abstained"] and a["passages"]:
        with st.expander("Closest passages", expanded=True):
            for p in a["passages"][:3]:
                st.button(f"[{p['n']}] {Path(p['source']).name} p.{p['page']}", key=f"near-{i}-{p['n']}",
                          on_click=open_source, args=(i, p["n"]))
    seen = set()
    for c in a["citations"]:
        if c["n"] in seen:
            continue
        seen.add(c["n"])
        st.button(citation_label(c), key=f"cite-{i}-{c['n']}", on_click=open_source, args=(i, c["n"]),
                  type="tertiary", icon=":material/format_quote:")
    if a.get("id") and a["passages"]:  # nothing to rate when there was nothing to search
        render_feedback(a["id"])


def render_feedback(answer_id: str) -> None:
    state = service().feedback_state(answer_id) or {}
    key = f"rate-{answer_id}"
    cols = st.columns([1, 4])
    with cols[0]:
        st.feedback("thumbs", key=key, default={1: 1, -1: 0}.get(state.get("rating")),
                    on_change=save_rating, args=(answer_id, key))
    with cols[1].popover("Edit your comment" if state.get("comment") or state.get("correction")
                         else "Comment or correct", icon=":material/edit_note:"):
        with st.form(f"fb-form-{answer_id}"):
            comment = st.text_input("Comment", value=state.get("comment") or "")
            correction = st.text_area("Corrected answer", value=state.get("correction") or "")
            if st.form_submit_button("Save"):
                service().feedback(answer_id, comment=comment, correction=correction)
                st.toast("Feedback saved")
                st.rerun()
    if state.get("comment"):
        st.caption(plain(f"Your comment: {state['comment']}"))
    if state.get("correction"):
        st.caption(plain(f"Your correction: {state['correction']}"))


@st.dialog("Source", width="large")
def show_source(a: dict, n: int) -> None:
    """The cited passage, in a dialog: it opens where the user is looking, whatever the scroll."""
    p = a["passages"][n - 1]
    st.subheader(plain(f"[{n}] {Path(p['source']).name}"))
    st.caption(plain(f"page {p['page']}" + (f" · {p['heading']}" if p["heading"] else "")
                     + f" · characters {p['char_start']}-{p['char_end']} of the page"))
    quotes = [c["quote"] for c in a["citations"] if c["n"] == n and c["quote"]]
    if p.get("ocr"):
        st.caption("Text read by OCR from a scanned page: it may hold recognition errors, so check "
                   "figures against the original.", help="RAG_OCR=off turns OCR off.")
    with st.container(border=True):
        st.markdown(highlighted(p["text"], quotes[:3]))
    for c in a["citations"]:
        if c["n"] == n:
            st.caption(plain(("Verified" if c["verified"] else "NOT verified")
                             + (" (inferred by the app)" if c["inferred"] else "")
                             + f", support {c['support']:.2f}: backs \"{c['sentence']}\""))
    stages = sorted(set(p["scores"]) | set(p["ranks"]))
    with st.expander("How each ranking stage scored it"):
        st.dataframe(pd.DataFrame({"stage": stages, "score": [p["scores"].get(s) for s in stages],
                                   "rank": [p["ranks"].get(s) for s in stages]}), hide_index=True)


# -- the page
head, manage = st.columns([5, 1], vertical_alignment="bottom")
head.title("Chat with your documents")
if conv:
    with manage.popover("Chat options", icon=":material/more_horiz:"):
        with st.form("rename"):
            title = st.text_input("Name", value=conv["title"])
            if st.form_submit_button("Rename"):
                try:
                    service().rename_conversation(conv["id"], me, title)
                    st.rerun()
                except RagError as e:
                    st.error(e.message)
        if st.button("Delete this conversation", icon=":material/delete:"):
            ss["delete_conversation"] = conv["id"]
    if ss.get("delete_conversation") == conv["id"]:
        confirm_delete(conv["id"], conv["title"])

empty_library = status is not None and status["documents"] == 0  # (the sidebar's reading)
if empty_library and not turns:
    st.info("No documents yet. Add your PDFs, Word, PowerPoint, Excel, CSV, Markdown, text or HTML "
            "files on the Library page, "
            "then ask about them here.", icon=":material/upload_file:")
    st.page_link("pages/library.py", label="Add documents", icon=":material/library_books:")

for i, turn in enumerate(turns):
    with st.chat_message("user"):
        st.markdown(plain(turn["question"]))
    with st.chat_message("assistant"):
        render_answer(i, turn["answer"])

question = st.chat_input("Add documents on the Library page first" if empty_library
                         else "Ask a question about your documents", disabled=empty_library)
if question:
    with st.chat_message("user"):
        st.markdown(plain(question))
    with st.chat_message("assistant"):
        try:
            history = [t["answer"]["standalone"] for t in turns]
            working = st.empty()  # at once, not after st.spinner's half-second delay
            working.caption(":material/hourglass_top: Searching your documents…")
            cid = conv["id"] if conv else service().new_conversation(me)
            stream = service().ask(question, history=history, session=cid)
            deltas = iter(stream)
            first = next(deltas, "")  # the search and the first words: the slow part
            working.empty()
            st.write_stream(plain(d) for d in chain([first], deltas))
            service().add_turn(cid, me, question, stream.answer.to_json())
            open_conversation(cid)
            st.rerun()
        except RagError as e:
            st.error(e.message)

if ss["open"] is not None:
    turn, n = ss["open"]
    ss["open"] = None  # shown once; the next interaction closes it
    if turn < len(turns):
        show_source(turns[turn]["answer"], n)
