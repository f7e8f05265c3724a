"""DocChat: `streamlit run app.py`. Navigation only; each page lives in pages/."""
import streamlit as st

st.set_page_config(page_title="DocChat", page_icon=":material/forum:", layout="wide")
st.navigation([
    st.Page("pages/chat.py", title="Chat", icon=":material/forum:", default=True),
    st.Page("pages/library.py", title="Library", icon=":material/library_books:"),
    st.Page("pages/review.py", title="Review", icon=":material/rate_review:"),
    st.Page("pages/evaluate.py", title="Evaluate", icon=":material/compare:"),
    st.Page("pages/status.py", title="Index status", icon=":material/database:"),
]).run()
