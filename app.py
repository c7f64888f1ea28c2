"""Territory Atlas: the Streamlit entry point (page config, navigation).

Run with `streamlit run app.py`. The pages live in `pages/`, shared widgets in `ui/`, and
every number comes from the engine in `analytics/`.
"""

import os

import streamlit as st

from analytics import users
from ui.serving import exposure_warning
from ui.signin import session_user, signed_in

st.set_page_config(
    page_title="Territory Atlas", page_icon="🗺️", layout="wide",
    initial_sidebar_state="expanded",
)

PAGES = [
    st.Page("pages/map.py", title="Territory map", icon=":material/map:", default=True,
            url_path="map"),
    st.Page("pages/performance.py", title="Performance", icon=":material/leaderboard:",
            url_path="performance"),
    st.Page("pages/coverage.py", title="Coverage", icon=":material/radar:",
            url_path="coverage"),
    st.Page("pages/routes.py", title="Rep's week", icon=":material/route:",
            url_path="routes"),
    st.Page("pages/review.py", title="Territory review", icon=":material/fact_check:",
            url_path="review"),
    st.Page("pages/plans.py", title="Plans", icon=":material/layers:", url_path="plans"),
    st.Page("pages/data.py", title="Data", icon=":material/upload_file:", url_path="data"),
    st.Page("pages/settings.py", title="Settings", icon=":material/tune:",
            url_path="settings"),
]

users.set_resolver(session_user)  # widget callbacks act as the session's person
page = st.navigation(PAGES)
exposure_warning()
user = signed_in()  # stops here with the sign-in form until someone has signed in
if os.environ.get("TERRITORY_ATLAS_PROFILE"):  # developers: where a rerun's time goes
    import cProfile
    import pstats

    with cProfile.Profile() as profile, users.acting_as(user):
        page.run()
    stats = pstats.Stats(profile)
    if os.path.exists(os.environ["TERRITORY_ATLAS_PROFILE"]):  # keep only the latest run
        os.remove(os.environ["TERRITORY_ATLAS_PROFILE"])
    stats.dump_stats(os.environ["TERRITORY_ATLAS_PROFILE"])
else:
    with users.acting_as(user):
        page.run()
