"""DocChat: `streamlit run app.py`. Login (when configured) and navigation; pages live in pages/."""
import functools

import streamlit as st
from PIL import Image, ImageDraw

from rag.auth import auth_required, role_for_email, role_for_password
from rag.config import Settings


@functools.lru_cache(maxsize=1)
def app_icon() -> Image.Image:
    """The favicon, drawn here: a `:material/...` or emoji page icon is fetched from a CDN,
    so it would be missing offline."""
    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((4, 8, 60, 46), radius=10, fill="#2f6f73")
    d.polygon([(16, 44), (30, 44), (14, 58)], fill="#2f6f73")
    for y in (19, 28, 37):
        d.line((14, y, 50 if y < 37 else 38, y), fill="white", width=4)
    return img


st.set_page_config(page_title="DocChat", page_icon=app_icon(), layout="wide")
settings = Settings.load()


def oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except FileNotFoundError:
        return False


if oidc_configured():
    if not st.user.is_logged_in:
        st.title("DocChat")
        st.button("Log in", on_click=st.login, type="primary")
        st.stop()
    st.session_state["role"] = role_for_email(settings, st.user.get("email"))
    st.session_state["owner"] = f"user:{st.user.get('email') or st.user.get('sub')}"  # conversations per user
elif auth_required(settings) and "role" not in st.session_state:
    st.title("DocChat")
    with st.form("login"):
        password = st.text_input("Password", type="password")
        if st.form_submit_button("Log in", type="primary"):
            role = role_for_password(settings, password)
            if role is None:
                st.error("Wrong password.")
            else:
                st.session_state["role"] = role
                st.rerun()
    st.stop()

is_admin = st.session_state.get("role", "admin") == "admin"  # open app: everyone is admin
pages = [
    st.Page("pages/chat.py", title="Chat", icon=":material/forum:", default=True),
    st.Page("pages/library.py", title="Library", icon=":material/library_books:"),
]
if is_admin:
    pages += [st.Page("pages/review.py", title="Review", icon=":material/rate_review:"),
              st.Page("pages/evaluate.py", title="Evaluate", icon=":material/compare:")]
pages.append(st.Page("pages/status.py", title="Index status", icon=":material/database:"))
st.navigation(pages).run()
