"""Review: every logged answer, filtered; details with citations, passages and trace; export."""
import json
from pathlib import Path

import pandas as pd
import streamlit as st

from pages.common import plain, service, sidebar
from rag.errors import RagError

sidebar()
st.title("Review answers")

all_rows = service().review()
models = sorted({r["model"] for r in all_rows if r["model"]})
prompts = sorted({r["prompt_version"] for r in all_rows if r["prompt_version"]})
with st.expander("Filters", expanded=True):
    c = st.columns(6)
    rating = c[0].selectbox("Rating", ["any", "thumbs up", "thumbs down", "unrated"])
    dates = c[1].date_input("Dates", value=[], help="from - to")
    comment = c[2].selectbox("Comment", ["any", "has comment", "no comment"])
    prompt = c[3].selectbox("Prompt version", ["any", *prompts])
    model = c[4].selectbox("Model", ["any", *models])
    abst = c[5].selectbox("Abstained", ["any", "yes", "no"])

rows = service().review(
    rating={"thumbs up": 1, "thumbs down": -1}.get(rating),
    since=dates[0] if len(dates) > 0 else None, until=dates[1] if len(dates) > 1 else None,
    has_comment={"has comment": True, "no comment": False}.get(comment),
    prompt_version=None if prompt == "any" else prompt, model=None if model == "any" else model,
    abstained={"yes": True, "no": False}.get(abst))
if rating == "unrated":
    rows = [r for r in rows if r.get("rating") is None]

st.caption(f"{len(rows)} of {len(all_rows)} logged answers")
if rows:
    # The columns a reviewer scans; model, prompt and trace are in the answer's details below.
    table = pd.DataFrame([{"when": r["created_at"][:16].replace("T", " "), "question": r["question"],
                           "answer": r["answer"][:200], "rating": {1: "up", -1: "down"}.get(r.get("rating"), ""),
                           "comment": r.get("comment") or "", "abstained": bool(r["abstained"])} for r in rows])
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "when": st.column_config.TextColumn(width="small"), "question": st.column_config.TextColumn(width="medium"),
        "answer": st.column_config.TextColumn(width="medium"), "rating": st.column_config.TextColumn(width="small"),
        "abstained": st.column_config.CheckboxColumn(width="small")})
    e1, e2 = st.columns(2)
    e1.download_button("Export CSV", service().export_csv(rows), "answers.csv", "text/csv", on_click="ignore")
    e2.download_button("Export JSONL", service().export_jsonl(rows), "answers.jsonl", "application/jsonl",
                       on_click="ignore")

    labels = {f"{r['created_at']} · {r['question'][:80]}": r for r in rows}
    pick = st.selectbox("Open an answer", list(labels), index=None, placeholder="Choose an answer to review")
    if pick:
        r = labels[pick]
        st.subheader("Question")
        st.markdown(plain(r["question"]))
        st.subheader("Answer")
        st.markdown(plain(r["answer"]))
        if r["notice"]:
            st.caption(plain(r["notice"]))
        st.caption(plain(f"{r['mode']} · model {r['model'] or '-'} · prompt {r['prompt_version'] or '-'}"
                         f" · index version {r['index_version']} · id {r['id']}"))
        if r.get("rating") or r.get("comment") or r.get("correction"):
            st.info(plain(f"Rating: {({1: 'thumbs up', -1: 'thumbs down'}).get(r.get('rating'), 'none')}"
                          f" · comment: {r.get('comment') or '-'} · correction: {r.get('correction') or '-'}"))
            history = service().feedback_history(r["id"])
            if len(history) > 1:
                with st.expander(f"Feedback history ({len(history)} changes)"):
                    st.dataframe(pd.DataFrame([{"when": h["created_at"][:19].replace("T", " "),
                                                "rating": {1: "up", -1: "down"}.get(h["rating"], ""),
                                                "comment": h["comment"] or "", "correction": h["correction"] or ""}
                                               for h in history]), hide_index=True, width="stretch")
        st.subheader("Citations")
        if r["citations"]:
            st.dataframe(pd.DataFrame([{"n": c["n"], "source": Path(c["source"]).name, "page": c["page"],
                                        "verified": c["verified"], "inferred": c["inferred"], "support": c["support"],
                                        "quote": c["quote"]} for c in r["citations"]]), hide_index=True, width="stretch")
        else:
            st.caption("none")
        st.subheader("Retrieved passages")
        st.dataframe(pd.DataFrame([{"n": p["n"], "source": Path(p["source"]).name, "page": p["page"],
                                    **{f"{k} rank": v for k, v in p["ranks"].items()}, "text": p["text"][:300]}
                                   for p in r["passages"]]), hide_index=True, width="stretch")
        st.subheader("Trace")
        t = r["trace"]
        m = st.columns(4)
        m[0].metric("Total ms", round(t.get("timings_ms", {}).get("total", 0)))
        m[1].metric("Prompt tokens", t.get("tokens", {}).get("prompt") or 0)
        m[2].metric("Completion tokens", t.get("tokens", {}).get("completion") or 0)
        m[3].metric("Cost (USD)", f"{t.get('cost_usd', 0):.4f}")
        st.code(json.dumps({k: t.get(k) for k in ("prompt_version", "model", "mode", "index_version", "reranker",
                                                   "timings_ms", "tokens", "evidence", "abstain_reason")},
                           indent=1), language="json")
        if st.button("Add to evaluation set", help="its correction (if any) becomes the expected answer"):
            try:
                out = service().add_to_eval_set(r["id"])
                st.success(f"Added as {out['case']['id']} to {out['path']}")
            except RagError as e:
                st.error(e.message)
