"""Library: upload, see, delete and re-index documents; read chunks; try retrieval."""
from pathlib import Path

import pandas as pd
import streamlit as st

from pages.common import plain, service, sidebar
from rag.errors import RagError

sidebar()
st.title("Library")

with st.form("upload", clear_on_submit=True):
    files = st.file_uploader("Add documents (PDF, Markdown, text, HTML, JSON Lines)", accept_multiple_files=True)
    submitted = st.form_submit_button("Index files", type="primary")
if submitted and files:
    bar = st.progress(0.0, text="Indexing...")

    def progress(done: int, total: int, what: str) -> None:
        bar.progress(min(1.0, done / total) if total else 1.0, text=f"Indexing {Path(what).name}")

    try:
        result = service().ingest_uploads([(f.name, f.getvalue()) for f in files], progress=progress)
        bar.progress(1.0, text=f"Done in {result['seconds']} s: index version {result['index_version']}")
        st.session_state["last_upload"] = result["files"]
    except RagError as e:
        bar.empty()
        st.error(e.message)
if st.session_state.get("last_upload"):
    st.dataframe(pd.DataFrame(st.session_state["last_upload"])[["file", "status", "reason", "message", "pages", "chunks"]],
                 hide_index=True, width="stretch")

docs = service().documents()
st.subheader(f"Documents ({len(docs)})")
if not docs:
    st.info("No documents yet: add some above.")
else:
    table = pd.DataFrame([{"document": Path(d["source"]).name, "title": d["title"], "pages": d["pages"],
                           "chunks": d["n_chunks"], "added": d["added_at"], "status": d["status"],
                           "source": d["source"]} for d in docs])
    st.dataframe(table.drop(columns=["source"]), hide_index=True, width="stretch")
    names = {Path(d["source"]).name + f"  ({d['source']})": d for d in docs}
    c1, c2 = st.columns(2)
    with c1:
        doomed = st.multiselect("Delete documents", list(names))
        if st.button("Delete", disabled=not doomed):
            try:
                n = service().delete([names[x]["source"] for x in doomed])
                st.success(f"Deleted {n} document(s).")
                st.rerun()
            except RagError as e:
                st.error(e.message)
    with c2:
        st.write("Re-index rebuilds FAISS and BM25 from the stored chunks (no re-embedding).")
        if st.button("Re-index"):
            try:
                st.success(f"Index rebuilt: version {service().reindex()}.")
            except RagError as e:
                st.error(e.message)

    st.subheader("Read a document")
    pick = st.selectbox("Document", list(names), index=None, placeholder="Choose a document")
    if pick:
        for c in service().chunks(names[pick]["id"]):
            with st.container(border=True):
                st.caption(plain(f"chunk {c['ordinal']} · page {c['page']}" + (f" · {c['heading']}" if c["heading"] else "")))
                st.markdown(plain(c["text"]))

st.subheader("Retrieval playground")
query = st.text_input("Query", placeholder="See how each stage ranks passages for a query")
if query:
    try:
        result = service().playground(query, k=10)
    except RagError as e:
        st.error(e.message)
    else:
        st.caption(f"reranker: {result['reranker']} · " + ", ".join(f"{k} {v} ms" for k, v in result["timings_ms"].items()))
        st.dataframe(pd.DataFrame(result["rows"]), hide_index=True, width="stretch",
                     column_config={"text": st.column_config.TextColumn(width="large")})
