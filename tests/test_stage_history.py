"""The territory review's optional import: a deal's created date, lead source, the
competitor and reason of a loss, and the stage history file (Salesforce OpportunityHistory
or OpportunityFieldHistory). Expected values are the files' own cells, written here."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from conftest import rows, scalar, snapshot

from analytics import ingest
from analytics.cli import main
from analytics.errors import InputError
from analytics.ingest import ImportRejected
from analytics.store import Store

ACCOUNTS = [["account_id", "lat", "lon", "segment"],
            ["A1", 40.7, -74.0, "Hospital"], ["A2", 40.8, -74.1, "Clinic"]]
DEALS = [["Id", "AccountId", "Amount", "CloseDate", "StageName", "CreatedDate", "LeadSource",
          "Competitor__c", "Loss_Reason__c"],
         ["O1", "A1", 100, "2026-03-01", "Closed Won", "2026-01-01", "Web", "", ""],
         ["O2", "A1", 50, "2026-03-01", "Closed Lost", "2026-02-10", "Web", "Acme", "Price"],
         ["O3", "A2", 70, "2026-05-01", "Closed Lost", "2026-02-01", "Referral", "Acme",
          "Timing"],
         ["O4", "A2", 90, "2026-11-01", "Negotiation/Review", "2026-06-01", "", "", ""]]
HISTORY = [["OpportunityId", "StageName", "CreatedDate"],
           ["O1", "Prospecting", "2026-01-01"], ["O1", "Proposal", "2026-02-01"],
           ["O1", "Closed Won", "2026-03-01"], ["O3", "Prospecting", "2026-02-01"],
           ["O3", "Closed Lost", "2026-05-01"], ["O4", "Prospecting", "2026-06-01"],
           ["O4", "Negotiation/Review", "2026-08-01"]]


@pytest.fixture
def loaded(store, make_csv):
    report = ingest.load(store, accounts=make_csv("a.csv", ACCOUNTS),
                         sales=make_csv("d.csv", DEALS),
                         stage_history=make_csv("h.csv", HISTORY))
    assert report.clean, report.rejections
    return store


def test_optional_deal_fields_are_matched_by_salesforce_names(loaded):
    got = rows(loaded, "SELECT opportunity_id, created_date, lead_source, lost_to, "
                       "loss_reason FROM sales ORDER BY 1")
    assert got == [("O1", dt.date(2026, 1, 1), "Web", None, None),
                   ("O2", dt.date(2026, 2, 10), "Web", "Acme", "Price"),
                   ("O3", dt.date(2026, 2, 1), "Referral", "Acme", "Timing"),
                   ("O4", dt.date(2026, 6, 1), None, None, None)]


def test_stage_history_is_stored_with_each_stage_class(loaded):
    got = rows(loaded, "SELECT opportunity_id, stage, stage_class, changed_at "
                       "FROM stage_history ORDER BY 1, 4")
    assert got == [("O1", "Prospecting", "open", dt.date(2026, 1, 1)),
                   ("O1", "Proposal", "open", dt.date(2026, 2, 1)),
                   ("O1", "Closed Won", "won", dt.date(2026, 3, 1)),
                   ("O3", "Prospecting", "open", dt.date(2026, 2, 1)),
                   ("O3", "Closed Lost", "lost", dt.date(2026, 5, 1)),
                   ("O4", "Prospecting", "open", dt.date(2026, 6, 1)),
                   ("O4", "Negotiation/Review", "open", dt.date(2026, 8, 1))]


def test_deals_without_the_optional_fields_still_import(store, make_csv):
    report = ingest.load(store, accounts=make_csv("a.csv", ACCOUNTS), sales=make_csv(
        "d.csv", [["opportunity_id", "account_id", "amount", "close_date", "stage"],
                  ["O1", "A1", 5, "2026-01-05", "won"]]))
    assert report.clean
    assert rows(store, "SELECT created_date, lead_source, lost_to, loss_reason FROM sales") \
        == [(None, None, None, None)]


def test_field_history_keeps_only_stage_rows(store, make_csv):
    ingest.load(store, accounts=make_csv("a.csv", ACCOUNTS), sales=make_csv("d.csv", DEALS))
    report = ingest.load(store, stage_history=make_csv("fh.csv", [
        ["OpportunityId", "Field", "OldValue", "NewValue", "CreatedDate"],
        ["O1", "StageName", "Prospecting", "Proposal", "2026-02-01"],
        ["O1", "Amount", "90", "100", "2026-02-03"],
        ["O1", "StageName", "Proposal", "Closed Won", "2026-03-01"]]))
    assert report.clean
    assert any("1 rows change other fields" in n for n in report.tables[0].notes)
    assert rows(store, "SELECT stage, changed_at FROM stage_history ORDER BY 2") == [
        ("Proposal", dt.date(2026, 2, 1)), ("Closed Won", dt.date(2026, 3, 1))]


def test_bad_history_rows_are_reported_by_file_row_and_column(loaded, make_csv):
    report = ingest.load(loaded, stage_history=make_csv("bad.csv", [
        ["OpportunityId", "StageName", "CreatedDate"],
        ["O2", "Prospecting", "2026-02-10"],       # row 2: fine
        ["O9", "Prospecting", "2026-02-01"],       # row 3: no such deal
        ["O2", "Proposal", "last tuesday"],        # row 4: not a date
        ["O2", "", "2026-02-20"],                  # row 5: no stage
        ["", "Proposal", "2026-02-20"]]))          # row 6: no deal id
    got = {(Path(r.file).name, r.row, r.column): r.reason for r in report.rejections}
    assert set(got) == {("bad.csv", 3, "OpportunityId"), ("bad.csv", 4, "CreatedDate"),
                        ("bad.csv", 5, "StageName"), ("bad.csv", 6, "OpportunityId")}
    assert "does not exist" in got[("bad.csv", 3, "OpportunityId")]
    assert "not a date" in got[("bad.csv", 4, "CreatedDate")]
    assert "required" in got[("bad.csv", 5, "StageName")]
    assert rows(loaded, "SELECT stage FROM stage_history WHERE opportunity_id = 'O2'") == [
        ("Prospecting",)]


def test_a_deals_history_in_a_new_file_replaces_the_stored_one(loaded, make_csv):
    ingest.load(loaded, stage_history=make_csv("h2.csv", [
        ["OpportunityId", "StageName", "CreatedDate"],
        ["O1", "Qualification", "2026-01-15"], ["O1", "Closed Won", "2026-03-01"],
        ["O1", "Closed Won", "2026-03-01"]]))  # an exact repeat counts once
    assert rows(loaded, "SELECT stage FROM stage_history WHERE opportunity_id = 'O1' "
                        "ORDER BY changed_at") == [("Qualification",), ("Closed Won",)]
    assert scalar(loaded, "SELECT count(*) FROM stage_history WHERE opportunity_id <> 'O1'") \
        == 4  # other deals' history untouched


def test_created_after_close_is_rejected_and_all_or_nothing_stores_nothing(loaded,
                                                                           make_csv):
    before = snapshot(loaded)
    bad = [DEALS[0], ["O5", "A1", 10, "2026-01-01", "won", "2026-02-01", "", "", ""]]
    with pytest.raises(ImportRejected) as info:
        ingest.load(loaded, sales=make_csv("late.csv", bad), all_or_nothing=True)
    (r,) = info.value.report.rejections
    assert (Path(r.file).name, r.row, r.column, r.value) == (
        "late.csv", 2, "CreatedDate", "2026-02-01")
    assert "created after its close date (2026-01-01)" in r.reason
    assert snapshot(loaded) == before


def test_replacing_deals_drops_the_history_of_deals_gone(loaded, make_csv):
    ingest.load(loaded, sales=make_csv("d2.csv", [DEALS[0], DEALS[1]]), replace=True)
    assert rows(loaded, "SELECT DISTINCT opportunity_id FROM stage_history") == [("O1",)]


def test_replace_with_an_empty_history_file_is_refused(loaded, make_csv):
    before = snapshot(loaded)
    with pytest.raises(InputError, match="would delete all 7 stored stage_history"):
        ingest.load(loaded, stage_history=make_csv("empty.csv", [HISTORY[0]]), replace=True)
    assert snapshot(loaded) == before


def test_cli_loads_a_stage_history_and_exits_2_on_bad_rows(tmp_path, make_csv, capsys):
    db = tmp_path / "cli.duckdb"
    assert main(["load", "--db", str(db), "--accounts", str(make_csv("a.csv", ACCOUNTS)),
                 "--sales", str(make_csv("d.csv", DEALS)),
                 "--stage-history", str(make_csv("h.csv", HISTORY))]) == 0
    assert "stage_history: " in capsys.readouterr().out
    bad = make_csv("hb.csv", [HISTORY[0], ["O7", "Prospecting", "2026-01-01"]])
    assert main(["load", "--db", str(db), "--stage-history", str(bad)]) == 2
    assert "row 2, column 'OpportunityId'" in capsys.readouterr().err
    assert main(["load", "--db", str(db), "--stage-history",
                 str(tmp_path / "missing.csv")]) != 0
    with Store(db, read_only=True) as s:
        assert scalar(s, "SELECT count(*) FROM stage_history") == 7


def test_map_override_for_the_history(store, make_csv):
    ingest.load(store, accounts=make_csv("a.csv", ACCOUNTS), sales=make_csv("d.csv", DEALS))
    mapping = ingest.parse_mapping(["stage_history.changed_at=When",
                                    "stage_history.stage=To"])
    report = ingest.load(store, mapping=mapping, stage_history=make_csv("m.csv", [
        ["Deal", "To", "When"], ["O1", "Closed Won", "03/01/2026"]]))
    assert report.clean
    assert rows(store, "SELECT stage, changed_at FROM stage_history") == [
        ("Closed Won", dt.date(2026, 3, 1))]


def test_days_in_stage_and_the_stage_order_are_kept_at_import(loaded):
    got = rows(loaded, "SELECT stage, days_in_stage FROM stage_history "
                       "WHERE opportunity_id = 'O1' ORDER BY changed_at")
    assert got == [("Prospecting", 31), ("Proposal", 28), ("Closed Won", None)]
    # first entered at position 1: Prospecting (3 deals); at 2: Proposal (O1) and
    # Negotiation/Review (O4): a tie, by name
    assert scalar(loaded, "SELECT value FROM meta WHERE key = 'stage_order'") == \
        '["Prospecting", "Negotiation/Review", "Proposal"]'


def test_deal_stages_built_in_slices_equal_one_pass(loaded, monkeypatch):
    from analytics import stage_history

    whole = sorted(rows(loaded, "SELECT * FROM deal_stages"))
    assert whole == [("O1", ["Prospecting", "Proposal", "Closed Won"], [31, 28, None]),
                     ("O3", ["Prospecting", "Closed Lost"], [89, None]),
                     ("O4", ["Prospecting", "Negotiation/Review"], [61, None])]
    monkeypatch.setattr(stage_history, "ROWS_PER_PASS", 2)  # 7 changes: 4 slices
    stage_history.refresh_deal_stages(loaded.cursor())
    assert sorted(rows(loaded, "SELECT * FROM deal_stages")) == whole
