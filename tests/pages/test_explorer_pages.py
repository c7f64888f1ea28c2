"""Performance and Coverage pages with AppTest: filters, the URL round trip, drill-down."""

from __future__ import annotations

import datetime as dt

import pytest

from analytics import coverage, performance, plans
from analytics.cube import AccountFilter
from analytics.period import Period
from analytics.settings import load_settings
from analytics.store import Store
from ui.text import shown

PERIOD, AS_OF = Period.year(2026), dt.date(2026, 9, 30)


def _engine(db, level, scope):
    with Store(db) as store:
        cur = store.cursor()
        return performance.area_table(cur, plans.get_plan(cur), PERIOD, AS_OF, level, scope)


def _param(app, key) -> list[str]:
    value = app.query_params[key]
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _metrics(app):
    return {m.label: m.value for m in app.metric}


def test_a_link_reproduces_the_view(app):
    app.run()  # the map page first, as a fresh session would not; the URL is read once
    app.query_params.update({
        "metric": "win_rate_amount", "level": "rep", "cut": "Top N", "n": "5",
        "segment": ["Hospital", "Clinic"], "period": "2026-01-01:2026-06-30",
    })
    app.switch_page("pages/performance.py").run()
    assert not app.exception
    assert app.selectbox(key="p_metric").value == "win_rate_amount"
    assert app.segmented_control(key="p_level").value == "rep"
    assert app.multiselect(key="f_segment").value == ["Hospital", "Clinic"]
    table = app.dataframe[0].value
    scope = performance.Scope(AccountFilter(segments=("Hospital", "Clinic")))
    with Store(app.db_path) as store:
        cur = store.cursor()
        expected = performance.rank(performance.area_table(
            cur, plans.get_plan(cur), Period(dt.date(2026, 1, 1), dt.date(2026, 6, 30)),
            AS_OF, performance.Level("rep"), scope), "win_rate_amount", top=5)
    assert table["area"].tolist() == expected["area"].tolist()
    assert len(table) == 5
    # and the widgets write the URL back: a shared link carries the same view
    assert _param(app, "metric") == ["win_rate_amount"]
    assert _param(app, "segment") == ["Hospital", "Clinic"]
    assert _param(app, "period") == ["2026-01-01:2026-06-30"]


def test_changing_widgets_updates_the_url_and_bad_links_warn(app):
    app.run()
    app.query_params.update({"metric": "nonsense", "segment": ["Nope"],
                             "as_of": "yesterday", "min_accounts": "x"})
    app.switch_page("pages/performance.py").run()
    assert not app.exception
    texts = " ".join(shown(w.value) for w in app.warning)
    assert "Nope not in the data" in texts
    assert "as_of='yesterday' is not a date" in texts
    assert "min_accounts='x'" in texts
    assert app.selectbox(key="p_metric").value == "attainment"  # unknown metric: default
    app.selectbox(key="p_metric").select("growth").run()
    assert _param(app, "metric") == ["growth"]


def test_bottom_n_by_unit_with_minimum_accounts(app):
    app.run()
    app.switch_page("pages/performance.py").run()
    app.selectbox(key="p_metric").select("penetration")
    app.segmented_control(key="p_level").set_value("unit").run()  # enables the unit choice
    app.selectbox(key="p_unit").select("state")
    app.number_input(key="f_min_accounts").set_value(100).run()
    assert not app.exception
    table = app.dataframe[0].value
    level = performance.Level.parse("unit:state")
    expected = performance.rank(_engine(app.db_path, level, performance.Scope()),
                                "penetration", bottom=10, min_accounts=100)
    assert table["area"].tolist() == expected["area"].tolist()
    assert (table["accounts"] >= 100).all()


def test_bottom_counties_by_accounts_per_1k_establishments_among_big_markets(app):
    """The manager's question: bottom 10 counties by accounts per 1,000 establishments,
    among counties with at least 500 establishments; the floor is in the shared link."""
    app.run()
    app.switch_page("pages/performance.py").run()
    app.selectbox(key="p_metric").select("accounts_per_1k_establishments")
    app.segmented_control(key="p_level").set_value("unit").run()
    app.selectbox(key="p_unit").select("county")
    app.number_input(key="f_min_establishments").set_value(500).run()
    assert not app.exception
    table = app.dataframe[0].value
    level = performance.Level.parse("unit:county")
    expected = performance.rank(_engine(app.db_path, level, performance.Scope()),
                                "accounts_per_1k_establishments", bottom=10,
                                min_establishments=500)
    assert len(table) == 10
    assert table["area"].tolist() == expected["area"].tolist()
    assert _param(app, "min_establishments") == ["500"]


def test_filters_carry_from_performance_to_coverage(app):
    app.run()
    app.switch_page("pages/performance.py").run()
    app.multiselect(key="f_segment").select("Hospital").run()
    app.switch_page("pages/coverage.py").run()
    assert not app.exception
    assert app.multiselect(key="f_segment").value == ["Hospital"]
    with Store(app.db_path) as store:
        cur = store.cursor()
        acc = coverage.account_coverage(cur, plans.get_plan(cur), AS_OF, load_settings(store),
                                        performance.Scope(AccountFilter(("Hospital",))))
    m = _metrics(app)
    assert m["Out of reach"] == f"{int(acc['out_of_reach'].sum()):,}"
    assert m["Not touched"] == f"{int((~acc['touched']).sum()):,}"
    assert m["Unassigned accounts"] == f"{int(acc['territory_id'].isna().sum()):,}"
    assert len(acc) == 3064  # the demo's hospitals


def test_coverage_page_what_it_would_take(app):
    app.run()
    app.switch_page("pages/coverage.py").run()
    assert not app.exception
    lines = [m.value for m in app.markdown if "over the band" in m.value]
    under = [m.value for m in app.markdown if m.value.startswith("**Under-served**")]
    n_under = int(under[0].split("(")[1].rstrip(")"))
    assert len(lines) == n_under > 0


@pytest.mark.parametrize("metric", list(performance.RANK_METRICS))
def test_every_metric_at_every_level(app, metric):
    """Each metric ranks at each level without error (ranking by won, potential or accounts
    once crashed the page: the ranked column was listed twice), and the table shows the
    engine's ranking with every column once."""
    app.run()
    app.query_params.update({"metric": metric})
    app.switch_page("pages/performance.py").run()
    assert not app.exception
    assert app.selectbox(key="p_metric").value == metric
    for level in ("territory", "rep", "unit"):
        app.segmented_control(key="p_level").set_value(level).run()
        assert not app.exception, (metric, level)
        if level == "unit":
            app.selectbox(key="p_unit").select("county").run()
            assert not app.exception, (metric, level)
        if metric == "attainment" and level == "unit":  # units have no quota
            assert "Units have no quota" in " ".join(i.value for i in app.info)
            continue
        table = app.dataframe[0].value
        assert list(table.columns).count(metric) == 1
        assert len(set(table.columns)) == len(table.columns)
        parsed = performance.Level.parse("unit:county" if level == "unit" else level)
        expected = performance.rank(_engine(app.db_path, parsed, performance.Scope()),
                                    metric, bottom=10)
        assert table["area"].tolist() == expected["area"].tolist(), (metric, level)
        assert len(table) == min(10, len(expected))
