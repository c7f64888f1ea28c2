"""Sign-in: who is using this session, checked before any page runs.

With no users in the database the person at this machine is the local admin (the quick
start); once an admin has added users (`python -m analytics user add`), every session
signs in first: through the organisation's identity provider with Streamlit's native OIDC
sign-in (`st.login`) when `.streamlit/secrets.toml` configures one (`[auth]`), the
provider's e-mail address naming the user; or with a user name and password from the
built-in account store (analytics/users.py, Argon2id hashes). The signed-in person acts
in the engine for the page run and for widget callbacks alike (`users.set_resolver`), so
an edit is recorded under their name and refused when their role does not allow it.
"""

from __future__ import annotations

import streamlit as st

from analytics import users
from analytics.errors import InputError
from ui.context import open_store
from ui.text import literal

KEY = "atlas_user"
NOBODY = users.User("nobody", "viewer")


def session_user() -> users.User | None:
    """The person of the session whose script or callback is running (a viewer named
    nobody before the sign-in decided); None outside any session (the engine then falls
    back to the local admin, as on the command line)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if get_script_run_ctx(suppress_warning=True) is None:
        return None
    return st.session_state.get(KEY) or NOBODY


def signed_in() -> users.User:
    """The person using this session; draws the sign-in form and stops the run until one
    has signed in when the database has users."""
    store = open_store()
    cur = store.cursor()
    if not users.has_users(cur):
        st.session_state[KEY] = users.local_admin()
        return st.session_state[KEY]
    who = st.session_state.get(KEY)
    if who is not None and not who.local:
        try:  # roles can change while signed in: read them again each run
            st.session_state[KEY] = users.get_user(cur, who.username)
        except InputError:
            st.session_state.pop(KEY, None)  # removed meanwhile: sign in again
    who = st.session_state.get(KEY)
    if who is None and identity_provider() and st.user.is_logged_in:
        try:  # signed in at the identity provider: which of our users is it?
            who = st.session_state[KEY] = users.identity_user(cur, st.user.get("email"))
        except InputError as err:
            st.title("Territory Atlas")
            st.error(literal(err))
            if st.button("Sign out", key="sign_out_unknown"):
                st.logout()
            st.stop()
    if who is not None and not who.local:
        with st.sidebar:
            st.caption(f"Signed in as **{literal(who.username)}** ({who.role})")
            if st.button("Sign out", key="sign_out"):
                st.session_state.pop(KEY, None)
                if identity_provider() and st.user.is_logged_in:
                    st.logout()  # also forgets the provider's identity cookie
                st.rerun()
        return who
    st.session_state.pop(KEY, None)
    _form(cur)
    st.stop()


def identity_provider() -> tuple[str, str | None] | None:
    """(the button's name for it, the provider to pass to `st.login`) when
    `.streamlit/secrets.toml` configures OIDC sign-in, else None: one flat `[auth]` with a
    client id (`st.login()`), or one `[auth.NAME]` section per provider
    (`st.login("NAME")`, the first one offered)."""
    try:
        auth = st.secrets.get("auth")
    except Exception:  # noqa: BLE001 - no secrets file, or one Streamlit cannot parse
        return None
    if not auth:
        return None
    if auth.get("client_id"):
        return "your organisation", None
    named = [k for k, v in auth.items() if hasattr(v, "get") and v.get("client_id")]
    return (named[0], named[0]) if named else None


def _form(cur) -> None:
    st.title("Territory Atlas")
    provider = identity_provider()
    if provider is not None:
        label, name = provider
        if st.button(f"Sign in with {literal(label)}", key="sign_in_oidc", type="primary"):
            st.login(name)  # to the provider, back to /oauth2callback, then here
        st.caption("Or with a Territory Atlas user name and password:")
    with st.form("sign_in"):
        st.markdown("Sign in to continue.")
        name = st.text_input("User name", key="sign_in_name")
        password = st.text_input("Password", type="password", key="sign_in_password")
        if st.form_submit_button("Sign in", type="primary"):
            try:
                st.session_state[KEY] = users.sign_in(cur, name, password)
            except InputError as err:
                st.error(literal(err))
                return
            st.session_state.pop("sign_in_password", None)
            st.rerun()
