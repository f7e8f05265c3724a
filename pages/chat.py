"""Chat: ask -> stream the answer -> cite -> rate. History lives in this browser session only."""
import uuid
from pathlib import Path

import pandas as pd
import streamlit as st

from pages.common import highlighted, plain, service, sidebar
from rag.errors import RagError

sidebar()
ss = st.session_state
ss.setdefault("session_id", uuid.uuid4().hex)
ss.setdefault("turns", [])
ss.setdefault("open", None)  # (turn index, passage n) shown in the source panel

st.title("Chat with your documents")
chat_col, source_col = st.columns([3, 2], gap="large")


def save_rating(answer_id: str, key: str) -> None:
    value = st.session_state.get(key)
    service().feedback(answer_id, rating=None if value is None else (1 if value == 1 else -1))
    st.toast("Rating saved")


def open_source(turn: int, n: int) -> None:
    st.session_state["open"] = (turn, n)


def citation_label(c: dict) -> str:
    flag = "verified" if c["verified"] else "not verified"
    if c["inferred"]:
        flag += ", inferred"
    return f"[{c['n']}] {Path(c['source']).name} p.{c['page']} ({flag})"


def render_answer(i: int, a: dict) -> None:
    st.markdown(plain(a["answer"]))
    for note in a["notices"]:
        st.caption(plain(note))
    if a["abstained"]:
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
    if a.get("id"):
        key = f"rate-{a['id']}"
        fb_cols = st.columns([1, 4])
        with fb_cols[0]:
            st.feedback("thumbs", key=key, on_change=save_rating, args=(a["id"], key))
        with fb_cols[1].popover("Comment or correct"):
            with st.form(f"fb-form-{a['id']}", clear_on_submit=True):
                comment = st.text_input("Comment")
                correction = st.text_area("Corrected answer")
                if st.form_submit_button("Save"):
                    service().feedback(a["id"], comment=comment, correction=correction)
                    st.toast("Feedback saved")


with chat_col:
    for i, turn in enumerate(ss.turns):
        with st.chat_message("user"):
            st.markdown(plain(turn["question"]))
        with st.chat_message("assistant"):
            render_answer(i, turn["answer"])

    question = st.chat_input("Ask a question about your documents")
    if question:
        with st.chat_message("user"):
            st.markdown(plain(question))
        with st.chat_message("assistant"):
            try:
                history = [t["answer"]["standalone"] for t in ss.turns]
                stream = service().ask(question, history=history, session=ss.session_id)
                st.write_stream(plain(delta) for delta in stream)
                ss.turns.append({"question": question, "answer": stream.answer.to_json()})
                ss.open = None
                st.rerun()
            except RagError as e:
                st.error(e.message)

with source_col:
    if ss.open is None or ss.open[0] >= len(ss.turns):
        st.caption("Click a citation to see the passage it points to.")
    else:
        turn, n = ss.open
        a = ss.turns[turn]["answer"]
        p = a["passages"][n - 1]
        st.subheader(f"[{n}] {Path(p['source']).name}")
        st.caption(plain(f"page {p['page']}" + (f" · {p['heading']}" if p["heading"] else "")
                         + f" · characters {p['char_start']}-{p['char_end']} of the page"))
        quotes = [c["quote"] for c in a["citations"] if c["n"] == n and c["quote"]]
        with st.container(border=True):
            st.markdown(highlighted(p["text"], quotes[:3]))
        for c in a["citations"]:
            if c["n"] == n:
                st.caption(plain(("Verified" if c["verified"] else "NOT verified")
                                 + (" (inferred by the app)" if c["inferred"] else "")
                                 + f", support {c['support']:.2f}: backs \"{c['sentence']}\""))
        stages = sorted(set(p["scores"]) | set(p["ranks"]))
        st.dataframe(pd.DataFrame({"stage": stages, "score": [p["scores"].get(s) for s in stages],
                                   "rank": [p["ranks"].get(s) for s in stages]}), hide_index=True)
