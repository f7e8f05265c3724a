"""Index status: read settings -> one library call -> render."""
import pandas as pd
import streamlit as st

from rag.config import Settings
from rag.errors import RagError
from rag.status import index_status

st.title("Index status")
try:
    status = index_status(Settings.load())
except RagError as e:
    st.error(e.message)
    st.stop()

cols = st.columns(4)
cols[0].metric("Documents", status["documents"])
cols[1].metric("Pages", status["pages"])
cols[2].metric("Chunks", status["chunks"])
cols[3].metric("Index version", status["index_version"])
st.caption(f"Data folder: {status['data_dir']} · embedder: {status['embedder_id'] or status['configured_embedder']}"
           f" · chunker: {status['chunker_version'] or '-'} · updated: {status['updated_at'] or 'never'}")
if status["documents"] == 0:
    st.info("No documents are indexed yet. Add some with `python -m ingest PATH --data-dir DATA_DIR`.")
if status["pending_documents"]:
    st.warning(f"{status['pending_documents']} document(s) from an interrupted ingest are waiting; "
               "run the same ingest again to finish them.")
if status["documents_list"]:
    st.subheader("Documents")
    docs = pd.DataFrame(status["documents_list"])[["title", "source", "kind", "pages", "n_chunks", "added_at"]]
    st.dataframe(docs.rename(columns={"n_chunks": "chunks", "added_at": "added"}), hide_index=True, width="stretch")
if status["recent_errors"]:
    st.subheader("Files that could not be indexed")
    st.dataframe(pd.DataFrame(status["recent_errors"]), hide_index=True, width="stretch")
