"""The store: schema migration, and integer account keys that survive updates."""

from __future__ import annotations

import duckdb

from analytics import cube, ingest
from analytics.period import Period
from analytics.schema import SCHEMA_VERSION
from analytics.store import Store
from analytics.units import UnitType


def _files(tmp_path, potential_a1="100"):
    acc = tmp_path / "accounts.csv"
    acc.write_text(
        "account_id,lat,lon,potential\n"
        f"A1,40.0,-75.0,{potential_a1}\n"
        "A2,41.0,-75.0,200\n"
    )
    sales = tmp_path / "sales.csv"
    sales.write_text(
        "opportunity_id,account_id,amount,close_date,stage\n"
        "O1,A1,10,2026-02-01,won\n"
        "O2,A2,20,2026-03-01,won\n"
        "O3,A2,5,2026-04-01,open\n"
    )
    return acc, sales


def _state_totals(store):
    frame = cube.unit_cube(store.cursor(), UnitType.parse("state"), Period.year(2026))
    return frame.set_index("unit_id")[["accounts", "potential", "won", "open_pipeline"]]


def test_updating_accounts_keeps_their_deals(tmp_path):
    acc, sales = _files(tmp_path)
    with Store(tmp_path / "db.duckdb") as store:
        ingest.load(store, accounts=acc, sales=sales)
        keys_before = dict(store.cursor().execute(
            "SELECT account_id, account_key FROM accounts").fetchall())
        acc2, _ = _files(tmp_path, potential_a1="150")
        report = ingest.load(store, accounts=acc2)
        assert report.tables[0].updated == 2
        keys_after = dict(store.cursor().execute(
            "SELECT account_id, account_key FROM accounts").fetchall())
        assert keys_after == keys_before
        totals = _state_totals(store)
        # A1 and A2 both lie in New Jersey (75 W is just east of the Delaware river):
        # won 10 + 20, open 5, potential 150 + 200
        assert totals.loc["NJ"].tolist() == [2, 350.0, 30.0, 5.0]


def test_new_accounts_get_new_keys(tmp_path):
    acc, sales = _files(tmp_path)
    with Store(tmp_path / "db.duckdb") as store:
        ingest.load(store, accounts=acc, sales=sales)
        more = tmp_path / "more.csv"
        more.write_text("account_id,lat,lon,potential\nA3,40.5,-75.0,1\n")
        ingest.load(store, accounts=more)
        keys = store.cursor().execute(
            "SELECT count(DISTINCT account_key), count(*) FROM accounts").fetchone()
        assert keys == (3, 3)


def test_version_1_database_is_migrated(tmp_path):
    path = tmp_path / "db.duckdb"
    acc, sales = _files(tmp_path)
    with Store(path) as store:
        ingest.load(store, accounts=acc, sales=sales)
        expected = _state_totals(store)
    con = duckdb.connect(str(path))  # turn it back into a version-1 database
    con.execute("ALTER TABLE sales DROP COLUMN account_key")
    con.execute("ALTER TABLE accounts DROP COLUMN account_key")
    con.execute("ALTER TABLE territories DROP COLUMN locked")
    con.execute("ALTER TABLE territories DROP COLUMN territory_type")
    for table in ("territory_types", "assignment_rules", "plan_events", "snapshots"):
        con.execute(f"DROP TABLE {table}")
    con.execute("DROP TABLE plan_edits")
    con.execute("DROP TABLE plan_edit_changes")
    for column in ("created_date", "lead_source", "lost_to", "loss_reason"):
        con.execute(f"ALTER TABLE sales DROP COLUMN {column}")
    con.execute("DROP TABLE stage_history")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.close()
    with Store(path) as store:
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
        cur = store.cursor()
        assert cur.execute("SELECT count(*) FROM plan_edits").fetchone() == (0,)
        assert cur.execute("SELECT count(*) FROM territories WHERE locked").fetchone() == (0,)
        missing = store.cursor().execute(
            "SELECT count(*) FROM sales WHERE account_key IS NULL").fetchone()[0]
        assert missing == 0
        assert _state_totals(store).equals(expected)


def test_a_version_8_history_gets_its_days_and_deal_stages(tmp_path, make_csv):
    """A database from before the days in stage and deal_stages were kept (schema 8)."""
    from analytics import funnel, plans

    path = tmp_path / "v8.duckdb"
    acc = make_csv("a.csv", [["account_id", "lat", "lon"], ["A1", 40.7, -74.0]])
    deals = make_csv("d.csv", [["opportunity_id", "account_id", "amount", "close_date",
                                "stage"], ["O1", "A1", 10, "2026-03-01", "won"]])
    hist = make_csv("h.csv", [["OpportunityId", "StageName", "CreatedDate"],
                              ["O1", "Prospecting", "2026-01-01"],
                              ["O1", "Proposal", "2026-02-01"],
                              ["O1", "Closed Won", "2026-03-01"]])
    with Store(path) as store:
        ingest.load(store, accounts=acc, sales=deals, stage_history=hist)
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE deal_stages")
    con.execute("ALTER TABLE stage_history DROP COLUMN days_in_stage")
    con.execute("DELETE FROM meta WHERE key = 'stage_order'")
    con.execute("UPDATE meta SET value = '8' WHERE key = 'schema_version'")
    con.close()
    with Store(path) as store:
        cur = store.cursor()
        assert cur.execute("SELECT stage, days_in_stage FROM stage_history ORDER BY "
                           "changed_at").fetchall() == [("Prospecting", 31), ("Proposal", 28),
                                                       ("Closed Won", None)]
        assert cur.execute("SELECT stages, days FROM deal_stages").fetchall() == [
            (["Prospecting", "Proposal", "Closed Won"], [31, 28, None])]
        plans.create_plan(store, "P", UnitType.parse("county"))
        got = funnel.funnel(cur, plans.get_plan(cur, "P"), Period.year(2026))
        assert got["stage"].tolist() == ["Prospecting", "Proposal", "Closed Won"]
        assert got["days_mean"].tolist()[:2] == [31, 28]
