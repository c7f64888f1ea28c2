"""People who sign in, their roles, and who is acting now.

Roles (docs/security.md): *admin* imports data, changes settings and users and every plan;
*manager* edits plans, only the territories given to them when a list is set; *rep* and
*viewer* change nothing. Passwords are hashed with Argon2id (argon2-cffi), never stored or
printed in clear.

Who acts is a context variable set once per request by the app (the signed-in person) or
per command by the command line (`--as USER`). With nobody set, the person at this machine
acts as the local admin under their operating-system name: the two-command quick start
needs no sign-in. The engine asks `require` before every change, so a page, the command
line and a script are held to the same rules.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import getpass
import json
from contextlib import contextmanager
from dataclasses import dataclass

from analytics.errors import InputError

ROLES = ("admin", "manager", "rep", "viewer")
EDITORS = ("admin", "manager")
USERNAME_MAX = 100


@dataclass(frozen=True)
class User:
    username: str
    role: str
    rep_id: str | None = None
    territories: tuple[str, ...] | None = None  # a manager's territories (None: all)
    local: bool = False  # the person at this machine, no sign-in

    def can_edit(self, territory_id: str | None) -> bool:
        if self.role == "admin":
            return True
        if self.role != "manager":
            return False
        return self.territories is None or territory_id is None or \
            territory_id in self.territories


def local_admin() -> User:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment (some containers)
        name = "unknown"
    return User(name, "admin", local=True)


_ACTING: contextvars.ContextVar[User | None] = contextvars.ContextVar("acting", default=None)
_RESOLVER = None


def set_resolver(resolver) -> None:
    """`resolver()` names who acts when no `acting_as` block is open: the app registers the
    session's signed-in person, so widget callbacks (which run before the page) act as
    them too."""
    global _RESOLVER
    _RESOLVER = resolver


def current() -> User:
    """Who is acting now: an open `acting_as` block, else the resolver's person, else the
    local admin (the command line without `--as`)."""
    return _ACTING.get() or (_RESOLVER() if _RESOLVER is not None else None) or local_admin()


@contextmanager
def acting_as(user: User):
    """Run the block as `user`."""
    token = _ACTING.set(user)
    try:
        yield user
    finally:
        _ACTING.reset(token)


def require(action: str, territories: set[str] | None = None) -> User:
    """The acting person, or InputError saying why they may not `action` (an edit touching
    `territories`: a manager only within theirs)."""
    user = current()
    if action == "edit":
        if user.role not in EDITORS:
            raise InputError(f"{user.username} is a {user.role}: {user.role}s read plans but "
                             "cannot change them")
        outside = sorted(t for t in (territories or set()) if not user.can_edit(t))
        if outside:
            raise InputError(f"{user.username} manages {', '.join(user.territories or ())}: "
                             f"territories {', '.join(outside[:10])} are read-only to them")
    elif user.role != "admin":
        raise InputError(f"{user.username} is a {user.role}: only an admin can {action}")
    return user


# --------------------------------------------------------------------------------------
# the account store
# --------------------------------------------------------------------------------------
def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()


def check_username(username: str | None) -> str:
    name = (username or "").strip()
    if not name or len(name) > USERNAME_MAX or any(c.isspace() or ord(c) < 32 for c in name):
        raise InputError(f"a user name is 1-{USERNAME_MAX} characters without spaces or "
                         "control characters")
    return name


def check_password(password: str | None) -> str:
    if not password or len(password) < 10:
        raise InputError("a password needs at least 10 characters")
    return password


def add_user(store, username: str, role: str, password: str | None, *,
             rep_id: str | None = None, territories: list[str] | None = None) -> User:
    """A new user (admin only, except the first user, who must be an admin).

    `password=None`: a user who signs in only through the identity provider (OIDC, when
    the app has one configured), named by the e-mail address the provider gives."""
    username = check_username(username)
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}: expected {', '.join(ROLES)}")
    if password is not None:
        check_password(password)
    with store.transaction() as cur:
        first = cur.execute("SELECT count(*) FROM users").fetchone()[0] == 0
        if first and role != "admin":
            raise InputError("the first user must be an admin (who can then add the others)")
        if not first:
            require("manage users")
        if cur.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
            raise InputError(f"a user named {username!r} already exists")
        if role == "rep" and not rep_id:
            raise InputError("a rep user needs --rep REP_ID (the rep whose territories they see)")
        if rep_id and not cur.execute("SELECT 1 FROM reps WHERE rep_id = ?",
                                      [rep_id]).fetchone():
            raise InputError(f"no rep with id {rep_id!r}")
        cur.execute("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)",
                    [username, role, _hasher().hash(password) if password is not None else None,
                     rep_id,
                     json.dumps(sorted(territories)) if territories else None,
                     dt.datetime.now()])
    return get_user(store.cursor(), username)


def get_user(cur, username: str) -> User:
    row = cur.execute("SELECT username, role, rep_id, territories FROM users WHERE "
                      "username = ?", [username]).fetchone()
    if row is None:
        raise InputError(f"no user named {username!r}")
    return User(row[0], row[1], row[2], tuple(json.loads(row[3])) if row[3] else None)


def list_users(cur) -> list[User]:
    names = [r[0] for r in cur.execute("SELECT username FROM users ORDER BY 1").fetchall()]
    return [get_user(cur, n) for n in names]


def has_users(cur) -> bool:
    return cur.execute("SELECT count(*) FROM users").fetchone()[0] > 0


def remove_user(store, username: str) -> None:
    with store.transaction() as cur:
        require("manage users")
        user = get_user(cur, username)
        admins = cur.execute("SELECT count(*) FROM users WHERE role = 'admin'").fetchone()[0]
        if user.role == "admin" and admins == 1:
            raise InputError("cannot remove the last admin")
        cur.execute("DELETE FROM users WHERE username = ?", [username])


def set_role(store, username: str, role: str, *, territories: list[str] | None = None,
             rep_id: str | None = None) -> User:
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}: expected {', '.join(ROLES)}")
    with store.transaction() as cur:
        require("manage users")
        user = get_user(cur, username)
        admins = cur.execute("SELECT count(*) FROM users WHERE role = 'admin'").fetchone()[0]
        if user.role == "admin" and role != "admin" and admins == 1:
            raise InputError("cannot take the admin role from the last admin")
        if role == "rep" and not (rep_id or user.rep_id):
            raise InputError("a rep user needs --rep REP_ID")
        cur.execute("UPDATE users SET role = ?, territories = ?, rep_id = coalesce(?, rep_id) "
                    "WHERE username = ?",
                    [role, json.dumps(sorted(territories)) if territories else None, rep_id,
                     username])
    return get_user(store.cursor(), username)


def identity_user(cur, email: str | None) -> User:
    """The user an identity provider's signed-in person is (OIDC): the one whose user name
    is their e-mail address, compared without regard to case; InputError when none is."""
    email = (email or "").strip()
    row = cur.execute("SELECT username FROM users WHERE lower(username) = lower(?)",
                      [email]).fetchone() if email else None
    if row is None:
        raise InputError(f"{email or 'this identity (no e-mail address)'} has no Territory "
                         "Atlas account: ask an admin to add it (`python -m analytics user "
                         "add EMAIL --role ROLE --sso`)")
    return get_user(cur, row[0])


def sign_in(cur, username: str, password: str) -> User:
    """The user, or InputError with one message for any wrong name or password (it does
    not say which)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    row = cur.execute("SELECT password_hash FROM users WHERE username = ?",
                      [(username or "").strip()]).fetchone()
    try:
        if row is None or not row[0] or not _hasher().verify(row[0], password or ""):
            raise InputError("wrong user name or password")
    except (VerificationError, InvalidHashError):
        raise InputError("wrong user name or password") from None
    return get_user(cur, username.strip())
