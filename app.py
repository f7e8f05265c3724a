"""DocChat: `streamlit run app.py`. Navigation only; each page lives in pages/."""
import streamlit as st

st.set_page_config(page_title="DocChat", page_icon=":material/forum:", layout="wide")
st.navigation([st.Page("pages/status.py", title="Index status", icon=":material/database:", default=True)]).run()
