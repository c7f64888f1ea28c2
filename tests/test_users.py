"""Users, roles and who acts: the account store, the engine's refusals, the command line.

The small world (tests/conftest.py): plan "Base" with territories T1..T5 over H3 cells.
"""

from __future__ import annotations

import io

import pytest
from conftest import rows, small_cells, snapshot

from analytics import edits, plans, users
from analytics.cli import main
from analytics.errors import InputError
from analytics.settings import Settings, save_settings
from analytics.store import Store

PASSWORD = "correct horse battery"


@pytest.fixture
def team(small_copy):
    """An admin, a manager of T1 and T4, a rep (R1) and a viewer."""
    with Store(small_copy) as s:
        users.add_user(s, "ada", "admin", PASSWORD)
        users.add_user(s, "max", "manager", PASSWORD, territories=["T1", "T4"])
        users.add_user(s, "rita", "rep", PASSWORD, rep_id="R1")
        users.add_user(s, "vic", "viewer", PASSWORD)
    return small_copy


def test_passwords_are_stored_hashed_and_checked(team):
    with Store(team) as s:
        cur = s.cursor()
        stored = dict(rows(s, "SELECT username, password_hash FROM users"))
        assert all(h.startswith("$argon2id$") and PASSWORD not in h for h in stored.values())
        assert len(set(stored.values())) == 4  # salted: equal passwords, different hashes
        assert users.sign_in(cur, "max", PASSWORD).role == "manager"
        for name, word in (("max", "wrong password!"), ("nobody", PASSWORD), ("max", "")):
            with pytest.raises(InputError, match=r"^wrong user name or password$"):
                users.sign_in(cur, name, word)


def test_the_first_user_is_an_admin_and_the_last_admin_stays(small_copy):
    with Store(small_copy) as s:
        with pytest.raises(InputError, match="first user must be an admin"):
            users.add_user(s, "max", "manager", PASSWORD)
        with pytest.raises(InputError, match="at least 10 characters"):
            users.add_user(s, "ada", "admin", "short")
        users.add_user(s, "ada", "admin", PASSWORD)
        with pytest.raises(InputError, match="last admin"):
            users.remove_user(s, "ada")
        with pytest.raises(InputError, match="last admin"):
            users.set_role(s, "ada", "viewer")


def _cell(territory: str) -> str:
    return sorted(small_cells()[territory])[0]


@pytest.mark.parametrize(("who", "allowed"), [
    ("ada", True), ("max", True), ("rita", False), ("vic", False)])
def test_who_may_paint_within_t1(team, who, allowed):
    with Store(team) as s:
        plan = plans.get_plan(s.cursor(), "Base")
        before = snapshot(s)
        with users.acting_as(users.get_user(s.cursor(), who)):
            if allowed:
                edits.assign(s, plan, [_cell("T4")], "T1")
            else:
                with pytest.raises(InputError, match="cannot change them"):
                    edits.assign(s, plan, [_cell("T4")], "T1")
        if allowed:  # the edit is recorded under the person who made it
            assert rows(s, "SELECT author FROM plan_edits") == [(who,)]
        else:
            assert snapshot(s) == before


def test_a_manager_edits_only_their_territories(team):
    with Store(team) as s:
        plan = plans.get_plan(s.cursor(), "Base")
        before = snapshot(s)
        with users.acting_as(users.get_user(s.cursor(), "max")):
            with pytest.raises(InputError, match="T2 are read-only to them"):
                edits.assign(s, plan, [_cell("T2")], "T1")  # takes a unit from T2
            with pytest.raises(InputError, match="T3 are read-only"):
                edits.update_territory(s, plan, "T3", name="Mine now")
            with pytest.raises(InputError, match="only an admin can change settings"):
                save_settings(s, Settings())
        assert snapshot(s) == before


def test_the_command_line_acts_as_a_user(team, capsys):
    base = ["--db", str(team)]
    before = None
    with Store(team) as s:
        before = snapshot(s)
    code = main(["--as", "vic", "plan", "assign", *base, "--territory", "T1", _cell("T4")])
    assert code == 2
    assert "vic is a viewer" in capsys.readouterr().err
    code = main(["--as", "rita", "load", *base, "--accounts", "nothing.csv"])
    assert code == 2
    assert "only an admin can import data" in capsys.readouterr().err
    with Store(team) as s:
        assert snapshot(s) == before
    assert main(["--as", "max", "plan", "assign", *base, "--territory", "T1",
                 _cell("T4")]) == 0
    with Store(team) as s:
        assert rows(s, "SELECT author FROM plan_edits") == [("max",)]
    assert main(["--as", "nobody", "summary", *base]) == 2


def test_user_commands(small_copy, capsys, monkeypatch):
    base = ["--db", str(small_copy)]
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["user", "add", *base, "ada", "--role", "admin", "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["user", "add", *base, "rita", "--role", "rep", "--rep", "R1",
                 "--password-stdin"]) == 0
    capsys.readouterr()
    assert main(["user", "list", *base]) == 0
    out = capsys.readouterr().out
    assert "ada,admin" in out
    assert "rita,rep,R1" in out
    assert "argon2" not in out
    assert PASSWORD not in out
    assert main(["user", "set-role", *base, "rita", "--role", "viewer"]) == 0
    assert main(["--as", "rita", "user", "remove", *base, "ada"]) == 2
    assert "only an admin can manage users" in capsys.readouterr().err
    assert main(["user", "remove", *base, "rita"]) == 0
    with Store(small_copy) as s:
        assert [u.username for u in users.list_users(s.cursor())] == ["ada"]


def test_undo_takes_back_your_own_edit_and_refuses_over_someone_elses(team):
    """ada paints a T1 cell into T4, then max paints another; ada's undo takes back hers
    only. When max then repaints ada's cell, her redo is refused, naming max."""
    ada_cell, max_cell = sorted(small_cells()["T1"])[:2]
    with Store(team) as s:
        cur = s.cursor()
        plan = plans.get_plan(cur, "Base")
        ada, mx = users.get_user(cur, "ada"), users.get_user(cur, "max")

        def owner(cell):
            return rows(s, "SELECT territory_id FROM plan_units p JOIN plans USING (plan_id) "
                        "WHERE name = 'Base' AND unit_id = ?", [cell])[0][0]

        with users.acting_as(ada):
            edits.assign(s, plan, [ada_cell], "T4")
        with users.acting_as(mx):
            edits.assign(s, plan, [max_cell], "T4")
            assert edits.next_labels(s.cursor(), plan)[0].startswith("Assign")
        with users.acting_as(ada):
            done = edits.undo(s, plan)  # hers, though max's came later
            assert done is not None
        assert (owner(ada_cell), owner(max_cell)) == ("T1", "T4")
        with users.acting_as(mx):
            edits.assign(s, plan, [ada_cell], "T4")  # max changes ada's cell meanwhile
        with users.acting_as(ada), pytest.raises(InputError,
                                                 match="refused: max changed 1 of the same"):
            edits.redo(s, plan)
        assert (owner(ada_cell), owner(max_cell)) == ("T4", "T4")  # nothing overwritten
        with users.acting_as(mx):  # max's own undo still works: nobody touched his cells
            assert edits.undo(s, plan) is not None
        assert owner(ada_cell) == "T1"
        who = {a for (a,) in rows(s, "SELECT DISTINCT author FROM plan_edits")}
        assert who == {"ada", "max"}  # the history says who did what


def test_the_second_save_of_a_territory_sees_the_first(team):
    with Store(team) as s:
        cur = s.cursor()
        plan = plans.get_plan(cur, "Base")
        ada, mx = users.get_user(cur, "ada"), users.get_user(cur, "max")
        seen = edits.territory_rows(cur, plan)["T1"]  # both open the form: "Plains"
        with users.acting_as(ada):
            edits.update_territory(s, plan, "T1", expected={"name": seen["name"]},
                                   name="Great Plains")
        before = snapshot(s)
        with users.acting_as(mx), pytest.raises(InputError) as err:
            edits.update_territory(s, plan, "T1", expected={"name": seen["name"]},
                                   name="Prairie")
        assert "T1 was changed by ada" in str(err.value)
        assert "name is now 'Great Plains' (you saw 'Plains')" in str(err.value)
        assert snapshot(s) == before  # nothing overwritten
        with users.acting_as(mx):  # having looked again, max saves on top
            edits.update_territory(s, plan, "T1", expected={"name": "Great Plains"},
                                   name="Prairie")
        assert edits.territory_rows(s.cursor(), plan)["T1"]["name"] == "Prairie"


def test_identity_provider_users_have_no_password_and_are_found_by_email(team, capsys):
    """`user add EMAIL --sso`: signs in only through the identity provider (OIDC), which
    names them by e-mail address, in any case; the password form never lets them in."""
    assert main(["--as", "ada", "user", "add", "--db", str(team), "Sam@Example.com",
                 "--role", "viewer", "--sso"]) == 0
    with Store(team) as s:
        cur = s.cursor()
        assert rows(s, "SELECT password_hash FROM users WHERE username = 'Sam@Example.com'"
                    ) == [(None,)]
        assert users.identity_user(cur, "sam@example.com").username == "Sam@Example.com"
        assert users.identity_user(cur, " SAM@EXAMPLE.COM ").role == "viewer"
        for word in ("", "anything at all", None):
            with pytest.raises(InputError, match=r"^wrong user name or password$"):
                users.sign_in(cur, "Sam@Example.com", word)
        with pytest.raises(InputError, match=r"stranger@example\.com has no Territory "
                                             r"Atlas account: ask an admin"):
            users.identity_user(cur, "stranger@example.com")
        with pytest.raises(InputError, match="no e-mail address"):
            users.identity_user(cur, None)


def test_colleagues_editing_at_the_same_moment_both_land(demo_copy):
    """Several sessions of one server (threads on one Store, as the app runs them) paint and
    undo on the same plan at once. DuckDB's optimistic concurrency aborts the later of two
    transactions touching the same row (every edit touches its plan's row): the engine runs
    it again, so no edit fails and none is lost (`Store.write`)."""
    import threading

    with Store(demo_copy) as s:
        users.add_user(s, "ada", "admin", PASSWORD)
        ada = users.get_user(s.cursor(), "ada")
        with users.acting_as(ada):
            for k in range(4):
                users.add_user(s, f"m{k}", "manager", PASSWORD)
        plan = plans.get_plan(s.cursor())
        before = dict(rows(s, "SELECT unit_id, territory_id FROM plan_units WHERE plan_id = ?",
                           [plan.plan_id]))
        units = sorted(u for u, t in before.items() if t != "T01")[:4 * 12]
        failures, kept = [], {}

        def session(k):
            mine = units[k::4]
            stack = []
            try:
                with users.acting_as(users.get_user(s.cursor(), f"m{k}")):
                    for n, unit in enumerate(mine):
                        edits.assign(s, plan, [unit], "T01", label=f"m{k} {unit}")
                        stack.append(unit)
                        if n % 3 == 2:
                            edits.undo(s, plan)
                            stack.pop()
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                failures.append(f"m{k}: {type(exc).__name__}: {exc}")
            kept[k] = stack

        threads = [threading.Thread(target=session, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        after = dict(rows(s, "SELECT unit_id, territory_id FROM plan_units WHERE plan_id = ?",
                          [plan.plan_id]))
        expected = dict(before)
        for stack in kept.values():
            for unit in stack:
                expected[unit] = "T01"
        assert after == expected
        log = rows(s, "SELECT author, count(*) FROM plan_edits WHERE plan_id = ? AND NOT "
                   "undone GROUP BY 1 ORDER BY 1", [plan.plan_id])
        assert log == [(f"m{k}", len(kept[k])) for k in range(4)]
