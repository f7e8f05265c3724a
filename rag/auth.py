"""Optional access control. With no password configured the app is open (it binds to
localhost by default). With RAG_APP_PASSWORD set, everyone must log in; RAG_ADMIN_PASSWORD
logs in as admin, and only admins see Review and Evaluate. When only RAG_ADMIN_PASSWORD is set,
that password is needed for everything.

OIDC: configure Streamlit's native `[auth]` section in .streamlit/secrets.toml (see the
example file); admins are then the e-mail addresses listed in RAG_ADMIN_EMAILS.
"""
from __future__ import annotations

import hmac

from rag.config import Settings


def auth_required(settings: Settings) -> bool:
    return bool(settings.app_password or settings.admin_password)


def role_for_password(settings: Settings, password: str) -> str | None:
    """'admin', 'user', or None when the password is wrong."""
    given = (password or "").encode()
    if settings.admin_password and hmac.compare_digest(given, settings.admin_password.encode()):
        return "admin"
    if settings.app_password and hmac.compare_digest(given, settings.app_password.encode()):
        return "user"
    return None


def role_for_email(settings: Settings, email: str | None) -> str:
    admins = {e.strip().lower() for e in (settings.admin_emails or "").split(",") if e.strip()}
    return "admin" if email and email.lower() in admins else "user"


__all__ = ["auth_required", "role_for_email", "role_for_password"]
