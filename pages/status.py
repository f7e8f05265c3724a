"""Index status: read settings -> one library call -> render."""
from pathlib import Path

import pandas as pd
import streamlit as st

from rag.config import Settings
from rag.errors import RagError
from rag.service import file_message
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
    docs["source"] = docs["source"].map(lambda x: Path(x).name)  # file names, not server paths
    st.dataframe(docs.rename(columns={"n_chunks": "chunks", "added_at": "added"}), hide_index=True, width="stretch")
if status["recent_errors"]:
    st.subheader("Files that could not be indexed")
    errors = [{"file": Path(e["path"]).name, "when": e["at"], "reason": e["reason"] or "",
               "message": file_message(e["message"], e["path"])}
              for e in status["recent_errors"]]  # file names, not server paths
    st.dataframe(pd.DataFrame(errors), hide_index=True, width="stretch",
                 column_config={"message": st.column_config.TextColumn(width="large")})
