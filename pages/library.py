"""Library: upload, see, delete and re-index documents; read chunks; try retrieval."""
from pathlib import Path

import pandas as pd
import streamlit as st

from pages.common import file_labels, flash, plain, service, sidebar
from rag.errors import RagError

_, status_box = sidebar()
st.title("Library")
flash()

with st.form("upload", clear_on_submit=True):
    files = st.file_uploader("Add documents (PDF, Word, PowerPoint, Excel, CSV, Markdown, text, HTML, JSON Lines)",
                             accept_multiple_files=True)
    submitted = st.form_submit_button("Index files", type="primary")
if submitted and not files:
    st.warning("Choose one or more files first (drag them onto the box above, or click Browse files).")
elif submitted:
    bar = st.progress(0.0, text=f"Starting: {len(files)} file(s)")

    def progress(event) -> None:
        bar.progress(event.fraction, text=plain(event.label()))

    try:
        result = service().ingest_uploads([(f.name, f.getvalue()) for f in files], progress=progress)
        bar.progress(1.0, text=f"Done in {result['seconds']} s: index version {result['index_version']}")
        st.session_state["last_upload"] = result["files"]
    except RagError as e:
        bar.empty()
        st.error(e.message)
    status_box()  # counts and version as they are now, not as they were when the page started
if st.session_state.get("last_upload"):
    table = pd.DataFrame(st.session_state["last_upload"]).reindex(
        columns=["file", "status", "pages", "chunks", "reason", "message"])
    st.dataframe(table.astype(object).where(table.notna(), ""), hide_index=True, width="stretch",
                 column_config={"message": st.column_config.TextColumn(width="large")})


def drop_pending() -> None:
    st.session_state.pop("delete_pending", None)


@st.dialog("Delete documents?", on_dismiss=drop_pending)
def confirm_delete(chosen: list[dict]) -> None:
    st.write(f"{len(chosen)} document(s) will be removed from the index, with their passages. "
             "This cannot be undone; to get them back, upload the files again.")
    st.markdown("  \n".join(f"- {plain(name)}" for name in file_labels([d["source"] for d in chosen])))
    c1, c2 = st.columns(2)
    if c1.button("Delete", type="primary"):
        drop_pending()
        try:
            n = service().delete([d["source"] for d in chosen])
        except RagError as e:
            st.error(e.message)
            return
        gone = {Path(d["source"]).name for d in chosen}  # as the upload table names them
        st.session_state["last_upload"] = [r for r in st.session_state.get("last_upload") or []
                                           if r["file"] not in gone]
        flash(f"Deleted {n} document(s): " + ", ".join(sorted(gone)))
        st.rerun()
    if c2.button("Cancel"):
        drop_pending()
        st.rerun()


docs = service().documents()
st.subheader(f"Documents ({len(docs)})")
if not docs:
    st.info("No documents yet: add some above.")
else:
    labels = file_labels([d["source"] for d in docs])
    names = dict(zip(labels, docs))
    table = pd.DataFrame([{"document": label, "title": d["title"], "pages": d["pages"], "chunks": d["n_chunks"],
                           "added": d["added_at"][:16].replace("T", " "), "status": d["status"]} for label, d in names.items()])
    st.dataframe(table, hide_index=True, width="stretch")
    c1, c2 = st.columns(2)
    with c1:
        doomed = st.multiselect("Delete documents", list(names))
        if st.button("Delete", disabled=not doomed, icon=":material/delete:"):
            st.session_state["delete_pending"] = [names[x]["source"] for x in doomed]
        # Asked in a dialog; the pending choice survives the dialog's own reruns.
        if pending := [d for d in docs if d["source"] in st.session_state.get("delete_pending", [])]:
            confirm_delete(pending)
    with c2:
        st.write("Re-index rebuilds FAISS and BM25 from the stored chunks (no re-embedding).")
        if st.button("Re-index"):
            try:
                st.success(f"Index rebuilt: version {service().reindex()}.")
                status_box()
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
        rows = pd.DataFrame(result["rows"]).drop(columns=["bm25_score", "dense_score", "fused_score"])
        st.dataframe(rows, hide_index=True, width="stretch", column_config={
            "text": st.column_config.TextColumn(width="large"), "source": st.column_config.TextColumn(width="small")})
