"""Evaluate: two stored answer-evaluation runs side by side, and the questions whose outcome changed."""

import pandas as pd
import streamlit as st

from pages.common import service, sidebar
from rag.answer.evaluate import compare, list_runs, load_run
from rag.errors import RagError

sidebar()
st.title("Evaluate")
st.caption("Runs come from `python -m rag.eval answers --set FILE --data-dir DIR`; each is stored with its "
           "configuration (prompt version, models, reranker, index version).")
runs = list_runs(service().settings.data_dir)
if len(runs) < 2:
    st.info(f"{len(runs)} stored run(s): run the answer evaluation twice (e.g. with two prompt versions) to compare.")
    st.stop()
names = {p.name: p for p in runs}
c1, c2 = st.columns(2)
a_name = c1.selectbox("Run A", list(names), index=1)
b_name = c2.selectbox("Run B", list(names), index=0)
try:
    result = compare(load_run(names[a_name]), load_run(names[b_name]))
except RagError as e:
    st.error(e.message)
    st.stop()
st.subheader("Configuration")
st.dataframe(pd.DataFrame(result["config"]).astype(str), hide_index=True, width="stretch")
st.subheader("Metrics")
st.dataframe(pd.DataFrame(result["metrics"]).astype(str), hide_index=True, width="stretch")
st.subheader(f"Questions whose outcome changed ({len(result['changed'])})")
if result["changed"]:
    st.dataframe(pd.DataFrame(result["changed"]), hide_index=True, width="stretch")
else:
    st.caption("none")
