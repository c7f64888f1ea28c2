"""The command line prints names as text, never as terminal control (analytics/terminal.py)."""

from __future__ import annotations

import pytest

from analytics.cli import main
from analytics.store import Store
from analytics.terminal import REPLACEMENT, terminal_text

ESCAPE = "\x1b[2J\x1b]8;;http://evil.example/\x07red\rfake"


@pytest.mark.parametrize(("text", "printed"), [
    ("plain", "plain"), ("a\tb\n", "a\tb\n"), ("row\r\n", "row\r\n"),
    ("\x1b[31mred", REPLACEMENT + "[31mred"), ("a\rb", "a" + REPLACEMENT + "b"),
    ("\x00\x07\x7f\x9b", REPLACEMENT * 4),
])
def test_the_rule(text, printed):
    assert terminal_text(text) == printed


def test_plan_list_and_errors_print_no_control(small_copy, capsys):
    with Store(small_copy) as s:
        s.cursor().execute("UPDATE plans SET name = ? WHERE name = 'Base'", [ESCAPE])
    assert main(["plan", "list", "--db", str(small_copy)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "red" + REPLACEMENT + "fake" in out  # the name is there, made harmless
    assert main(["summary", "--db", str(small_copy), "--plan", "\x1b[2Jnope"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err
    assert "nope" in err


def test_files_keep_the_data(small_copy, tmp_path, capsys):
    with Store(small_copy) as s:
        s.cursor().execute("UPDATE plans SET name = ? WHERE name = 'Base'", ["tab\there"])
    out = tmp_path / "plans.json"
    assert main(["plan", "list", "--db", str(small_copy), "--format", "json", "--out",
                 str(out)]) == 0
    assert "tab\\there" in out.read_text()
