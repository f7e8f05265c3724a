"""Evaluate: start an answer-evaluation run, then compare two stored runs side by side and list
the questions whose outcome changed."""

import pandas as pd
import streamlit as st

from pages.common import service, sidebar
from rag.answer.evaluate import (compare, headline, list_prompt_versions, list_runs, list_sets, load_run,
                                 run_answer_eval)
from rag.errors import RagError

EXTRACTIVE, LLM = "Extractive (no LLM)", "LLM"

sidebar()
st.title("Evaluate")
settings = service().settings

st.header("Start an evaluation run")
sets = list_sets(settings)
if not sets:
    st.info("No question sets found: add reviewed answers to the evaluation set on the Review page "
            "(they go to DATA_DIR/eval/reviewed.jsonl), or put a JSONL set there.")
else:
    with st.container(border=True):
        labels = {s["label"]: s for s in sets}
        chosen = labels[st.selectbox("Question set", list(labels))]
        versions = list_prompt_versions()
        c1, c2 = st.columns(2)
        prompt = c1.selectbox("Prompt version", versions, index=versions.index(settings.prompt_version)
                              if settings.prompt_version in versions else 0)
        llm_note = (f"uses {settings.llm_model or 'the server default model'} at {settings.llm_base_url}"
                    if settings.llm_base_url else "not available: no LLM configured (set RAG_LLM_BASE_URL)")
        kind = c2.radio("Answerer", [EXTRACTIVE, LLM], index=1 if settings.llm_base_url else 0,
                        captions=["quoted sentences from the passages", llm_note])
        c3, c4 = st.columns(2)
        split = c3.selectbox("Split", ["(all cases)"] + chosen["splits"], disabled=not chosen["splits"],
                             help="Only the cases of this split (sets with tune/test splits).")
        limit = c4.number_input("Case limit (0 = all)", min_value=0, value=0, step=1)
        if st.button("Run", type="primary"):
            bar = st.progress(0.0, text=f"Starting: {chosen['path'].name}")
            try:
                run, stored = run_answer_eval(
                    settings, chosen["path"], split=None if split == "(all cases)" else split,
                    limit=int(limit) or None, mode="llm" if kind == LLM else "extractive", prompt_version=prompt,
                    progress=lambda done, total, case_id: bar.progress(
                        done / total, text=f"Case {done}/{total}: {case_id}"))
            except RagError as e:
                bar.empty()
                st.error(e.message)
            else:
                st.success(f"Run stored as {stored.name} ({run['config']['llm']}, prompt "
                           f"{run['config']['prompt_version']}). {headline(run['summary'])}.")

st.header("Compare two runs")
st.caption("Runs started here or with `python -m rag.eval answers --set FILE --data-dir DIR`; each is stored "
           "with its configuration (prompt version, models, reranker, index version).")
runs = list_runs(settings.data_dir)
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
