"""Where the server listens, and the warning when it is reachable beyond this machine.

The quick start serves on 127.0.0.1 (Makefile, .streamlit/config.toml). A team serves on
another address (`make run ADDRESS=0.0.0.0`); until an admin has added users, nobody signs
in and anyone who reaches that port sees and edits everything, so every page says so.
"""

from __future__ import annotations

import ipaddress

import streamlit as st

LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", ""}


def is_local(address: str | None) -> bool:
    """True when `address` only accepts connections from this machine (loopback)."""
    text = (address or "").strip().strip("[]")
    if text.lower() in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False  # a host name other than localhost: assume it is reachable


def exposure_warning() -> None:
    """A warning on every page when the server listens beyond this machine and nobody has
    to sign in (the database has no users yet)."""
    from analytics import users
    from ui.context import open_store

    address = st.get_option("server.address")
    if is_local(address):
        return
    if users.has_users(open_store().cursor()):
        return  # everyone signs in first
    st.warning(
        "This server listens on an address other machines can reach, and the database has "
        "no users yet, so nobody signs in: anyone who reaches this port can see and change "
        "every plan and import data. Add users (`python -m analytics user add NAME --role "
        "admin`) so that everyone signs in, or serve it on 127.0.0.1 (`make run`).",
        icon=":material/public:")
