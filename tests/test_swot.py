"""The territory review (analytics/swot.py): each rule's number against the imported rows
computed with pandas, every line with its evidence, the Markdown / JSON outputs, the
command line and the meeting pack's review pages."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import pytest

from analytics import performance as pf
from analytics import plans, swot
from analytics.cli import main
from analytics.period import Period
from analytics.settings import load_settings
from analytics.store import Store

PERIOD = Period.year(2026)
AS_OF = dt.date(2026, 9, 30)


@pytest.fixture(scope="module")
def frames(demo_db):
    """The imported rows with each account's territory (county -> plan unit), read with
    plain SQL: the oracle's input."""
    with Store(demo_db, read_only=True) as s:
        cur = s.cursor()
        plan = plans.get_plan(cur, None)
        acc = cur.execute("SELECT a.account_id, u.territory_id FROM accounts a LEFT JOIN "
                          "plan_units u ON u.plan_id = ? AND u.unit_id = a.county",
                          [plan.plan_id]).df()
        sales = cur.execute("SELECT * FROM sales").df()
    for col in ("close_date", "created_date"):
        sales[col] = pd.to_datetime(sales[col])
    return sales.merge(acc, on="account_id")


@pytest.fixture(scope="module")
def t07(demo_db):
    with Store(demo_db, read_only=True) as s:
        cur = s.cursor()
        return swot.territory_review(cur, plans.get_plan(cur, None), PERIOD, AS_OF,
                                     load_settings(s), "T07")


def test_every_line_has_its_number_rule_and_evidence_link(t07):
    assert t07.lines
    for line in t07.lines:
        assert line.quadrant in swot.QUADRANTS
        assert line.value is not None
        assert line.rule
        assert line.text
        url = urlparse(line.link())
        q = parse_qs(url.query)
        assert url.path in ("performance", "review", "coverage")
        assert q["plan"] == ["Current alignment"]
        assert q["as_of"] == ["2026-09-30"]
        assert q["territory"] == ["T07"]
        if url.path == "review":
            assert q["drill"][0] in swot.DRILLS


def test_competitor_threat_against_pandas(t07, frames):
    lost = frames[(frames["territory_id"] == "T07") & (frames["stage"] == "lost")
                  & (frames["close_date"] >= pd.Timestamp(2026, 1, 1))
                  & (frames["close_date"] <= pd.Timestamp(2026, 12, 31))]
    named = lost[lost["lost_to"].notna() & (lost["lost_to"] != "(no decision)")]
    top = named["lost_to"].value_counts()
    (line,) = [ln for ln in t07.quadrant("threats") if ln.params.get("drill") == "competitors"]
    assert line.text.startswith(f"{top.index[0]} took {top.iloc[0]} of the territory's "
                                f"{len(lost)} lost deals")
    assert line.value == pytest.approx(top.iloc[0] / len(lost))


def test_slipping_deals_threat_against_pandas(t07, frames):
    open_ = frames[frames["stage"] == "open"]
    threshold = np.quantile(open_["amount"], swot.BIG_DEAL_QUANTILE)  # linear, as SQL's
    late = open_[(open_["territory_id"] == "T07") & (open_["close_date"] < pd.Timestamp(AS_OF))
                 & (open_["amount"] >= threshold)]
    (line,) = [ln for ln in t07.quadrant("threats") if ln.params.get("drill") == "slipping"]
    assert line.text.startswith(f"{len(late)} big open deals")
    assert line.value == pytest.approx(late["amount"].sum())


def test_growth_rule_against_pandas(demo_db, frames):
    won = frames[frames["stage"] == "won"]

    def growth(terr):
        w = won[won["territory_id"].notna()] if terr is None \
            else won[won["territory_id"] == terr]
        now = w[(w["close_date"] >= pd.Timestamp(2026, 1, 1))
                & (w["close_date"] <= pd.Timestamp(AS_OF))]
        then = w[(w["close_date"] >= pd.Timestamp(2025, 1, 1))
                 & (w["close_date"] <= pd.Timestamp(2025, 9, 30))]
        return now["amount"].sum() / then["amount"].sum() - 1

    plan_growth = growth(None)
    with Store(demo_db, read_only=True) as s:
        cur = s.cursor()
        plan = plans.get_plan(cur, None)
        rows = pf.area_table(cur, plan, swot.to_date(PERIOD, AS_OF), AS_OF,
                             pf.Level("territory"))
        for terr in ("T01", "T07", "T20", "T33"):
            lines = swot._growth(rows, PERIOD, AS_OF, terr, {})
            g = growth(terr)
            if g < 0 or g < plan_growth:
                (line,) = lines
                assert line.value == pytest.approx(g)
                assert line.params["period"] == "2026-01-01:2026-09-30"
            else:
                assert lines == []


def test_markdown_and_json_say_the_same(t07):
    data = json.loads(t07.json())
    assert [ln["text"] for q in swot.QUADRANTS for ln in data[q]] == \
        [ln.text for q in swot.QUADRANTS for ln in t07.quadrant(q)]
    md = t07.markdown("http://atlas.example/")
    for q in swot.QUADRANTS:
        assert f"## {q.capitalize()}" in md
    assert md.count("([evidence](http://atlas.example/") == len(t07.lines)
    assert data["funnel"][0]["stage"] == "Prospecting"


def test_typed_names_cannot_make_markdown_links():
    assert swot._md("[x](http://evil)") == "\\[x\\](http://evil)"
    assert swot._md("![img](x.png)") == "\\!\\[img\\](x.png)"


def test_cli_review_formats_and_errors(demo_db, tmp_path, capsys):
    out = tmp_path / "t07.json"
    assert main(["review", "--db", str(demo_db), "--territory", "T07", "--format", "json",
                 "--out", str(out)]) == 0
    assert json.loads(out.read_text())["territory_id"] == "T07"
    assert main(["review", "--db", str(demo_db), "--territory", "T07"]) == 0
    assert capsys.readouterr().out.startswith("# Territory review: T07")
    assert main(["review", "--db", str(demo_db), "--territory", "T99"]) == 2
    assert "T99" in capsys.readouterr().err
    assert main(["review", "--db", str(demo_db), "--territory", "T07", "--period",
                 "2026-13-01:2026-12-31"]) == 2


@pytest.mark.parametrize("fmt", ["pdf", "pptx"])
def test_meeting_pack_holds_the_review(demo_db, tmp_path, fmt, t07):
    out = tmp_path / f"pack.{fmt}"
    assert main(["export", "--db", str(demo_db), "--format", fmt, "--out", str(out),
                 "--review", "T07"]) == 0
    if fmt == "pdf":
        from pypdf import PdfReader

        text = "\n".join(p.extract_text() for p in PdfReader(out).pages)
    else:
        from pptx import Presentation

        text = "\n".join(sh.text_frame.text for sl in Presentation(out).slides
                         for sh in sl.shapes if sh.has_text_frame)
    assert "T07 – Los Angeles CA: review" in text
    for line in t07.lines:
        assert line.text[:40] in " ".join(text.split())
    assert main(["export", "--db", str(demo_db), "--format", "csv", "--out",
                 str(tmp_path / "x.csv"), "--review", "T07"]) == 2


def test_segment_analysis_by_lead_source_against_pandas(demo_db, frames):
    from analytics import review

    with Store(demo_db, read_only=True) as s:
        cur = s.cursor()
        got = review.segment_analysis(cur, plans.get_plan(cur, None), PERIOD,
                                      "lead_source").set_index("value")
    d = frames[(frames["close_date"] >= pd.Timestamp(2026, 1, 1))
               & (frames["close_date"] <= pd.Timestamp(2026, 12, 31))]
    won = d[d["stage"] == "won"]
    lost = d[d["stage"] == "lost"]
    for source, w in won.groupby("lead_source"):
        row = got.loc[source]
        assert row["won"] == pytest.approx(w["amount"].sum())
        assert row["win_rate"] == pytest.approx(
            len(w) / (len(w) + (lost["lead_source"] == source).sum()))
        cycle = (w["close_date"] - w["created_date"]).dt.days
        assert row["sales_cycle_days"] == pytest.approx(cycle.mean())


def test_file_names_come_from_the_one_rule(t07):
    from dataclasses import replace as dc_replace

    assert t07.file_name("md") == "review-T07-2026-09-30.md"
    hostile = dc_replace(t07, territory_id="../../etc/pass wd")
    assert hostile.file_name("pdf") == "review-etc_pass_wd-2026-09-30.pdf"
    assert dc_replace(t07, territory_id="...").file_name("md") == \
        "review-territory-2026-09-30.md"


@pytest.mark.parametrize("territory", ["T1", "T2", "T3", "T4", "T5"])
def test_every_small_world_territory_has_a_review(small_db, territory):
    """No stage history, a territory without a rep (T3), one without accounts (T5), one
    with quota and capacity 0 (T4): each review says what it can and nothing else."""
    from conftest import SMALL_AS_OF, SMALL_PERIOD

    with Store(small_db, read_only=True) as s:
        cur = s.cursor()
        got = swot.territory_review(cur, plans.get_plan(cur, None), SMALL_PERIOD,
                                    SMALL_AS_OF, load_settings(s), territory)
    assert set(got.funnel["source"]) == {"closed deals only (no stage history imported)"}
    assert all(ln.params.get("drill") != "funnel" for ln in got.lines)  # no stage to blame
    assert all(ln.params.get("drill") != "competitors" for ln in got.lines)
    json.loads(got.json())
    assert got.markdown().startswith(f"# Territory review: {territory}")
    if territory == "T3":
        assert got.rep_id is None
        assert "no rep" in got.markdown()
