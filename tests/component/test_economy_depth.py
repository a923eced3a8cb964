"""The industrial economy in depth through the API on real PostgreSQL: a year's series with
January-February together and 同口径 growth, the 规上 set derived from the year before's
revenue, 用电看经济 colours and 亩均 scores, each compared with figures computed here from the
seeded rows. Years of their own (2041-2042) keep the module apart from other tests' firms."""

from datetime import date

import psycopg
import pytest

from cityops.principal import Role
from tests.component.test_events_kit import Api, api_client, cst, unique

# firm -> year -> (revenue, value_added, tax, kwh) per month, months 1..n
SEED = {
    "A": {2041: [(200, 40, 5, 1000)] * 12,
          2042: [(210, 50, 6, 1000), (210, 50, 6, 1000), (220, 60, 7, 1000),
                 (220, 60, 7, 1000)]},
    "B": {2041: [(100, 10, 1, 100)] * 12, 2042: [(100, 10, 1, 100)] * 4},
    "C": {2042: [(90, 30, 2, 500)] * 4},
}


@pytest.fixture(scope="module")
def api(settings):
    with api_client(settings, cst(2042, 5, 20, 10, 0)) as api:
        tag = unique("e17e").replace("-", "").upper()
        api.codes = {k: f"{tag}{k}" for k in SEED}
        api.town, api.industry = f"镇{tag}", f"15 酒{tag}"
        with psycopg.connect(api.url) as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO import_batches (filename, rows_total, rows_loaded,"
                        " imported_by) VALUES ('seed', 0, 0, 'seed') RETURNING id")
            batch = cur.fetchone()[0]
            for key, years in SEED.items():
                cur.execute("INSERT INTO enterprises (code, name, industry, town, size,"
                            " ownership) VALUES (%s, %s, %s, %s, 'small', '私营')",
                            (api.codes[key], f"企业{key}", f"15 酒{tag}", f"镇{tag}"))
                for year, months in years.items():
                    for m, (rev, va, tax, kwh) in enumerate(months, start=1):
                        cur.execute(
                            "INSERT INTO enterprise_indicators (enterprise_code, month,"
                            " revenue, value_added, profit, tax, electricity_kwh, batch_id)"
                            " VALUES (%s, %s, %s, %s, 0, %s, %s, %s)",
                            (api.codes[key], date(year, m, 1), rev, va, tax, kwh, batch))
            cur.execute("INSERT INTO economy_land VALUES (2042, %s, 10), (2042, %s, 5)",
                        (api.codes["A"], api.codes["B"]))
            cur.execute("INSERT INTO economy_mu_weights VALUES (2042, 'tax', 0.4, 2),"
                        " (2042, 'value_added', 0.6, 10)")
        api.person("ed-loader", Role.DEPARTMENT_STAFF, api.department(unique("tjj"), "县统计局"))
        api.person("ed-viewer", Role.VIEWER)
        yield api


def _va(firms: str, year: int, months: range) -> float:
    return sum(SEED[f][year][m - 1][1] for f in firms if year in SEED[f] for m in months)


def test_series_puts_january_with_february_and_grows_on_this_years_firms(api: Api) -> None:
    out = api.ok("ed-viewer", "GET", "/v1/economy/series/2042")
    assert out["basis"] == "reporting" and out["firms"] >= 3
    got = {p["period"]: p for p in out["periods"]}
    assert list(got) == ["01-02", "03", "04"]
    # other modules' firms have no 2042 rows, so the reporting set is this module's three
    assert got["01-02"]["month"] == _va("ABC", 2042, range(1, 3))
    assert got["04"]["cumulative"] == _va("ABC", 2042, range(1, 5))
    before = _va("ABC", 2041, range(1, 5))  # C counts zero last year: it is new
    assert got["04"]["same_basis_last_year"] == before
    assert got["04"]["cumulative_growth"] == pytest.approx(
        _va("ABC", 2042, range(1, 5)) / before - 1, abs=1e-4)

    made = api.ok("ed-loader", "POST", "/v1/economy/scale-firms/2042")
    assert [c for c in made["firms"] if c in api.codes.values()] == [api.codes["A"]]
    assert api.post("ed-viewer", "/v1/economy/scale-firms/2042").status_code == 403
    scaled = api.ok("ed-viewer", "GET", "/v1/economy/series/2042")
    assert scaled["basis"] == "scale_set"
    assert scaled["periods"][-1]["cumulative_growth"] == pytest.approx(
        _va("A", 2042, range(1, 5)) / _va("A", 2041, range(1, 5)) - 1, abs=1e-4)
    bad = api.get("ed-viewer", "/v1/economy/series/2042", params={"measure": "nope"})
    assert bad.status_code == 422 and "nope" in bad.json()["detail"]


def test_power_warnings_colour_the_gap_and_mu_scores_weigh_land(api: Api) -> None:
    rows = {r["code"]: r for r in api.ok("ed-viewer", "GET", "/v1/economy/power-warnings",
                                         params={"month": "2042-04-30"})}
    a, b, c = (rows[api.codes[k]] for k in "ABC")
    assert a["gap_pp"] == pytest.approx(
        abs(0 - (_va("A", 2042, range(1, 5)) / _va("A", 2041, range(1, 5)) - 1)) * 100, abs=0.01)
    assert (a["colour"], b["colour"], b["gap_pp"]) == ("red", "green", 0)
    assert c["colour"] is None and "year before" in c["note"]
    jan = api.get("ed-viewer", "/v1/economy/power-warnings", params={"month": "2042-01-10"})
    assert jan.status_code == 422 and "February" in jan.json()["detail"]
    old = api.get("ed-viewer", "/v1/economy/power-warnings", params={"month": "0001-03-01"})
    assert old.status_code == 422 and "2000..2100" in old.json()["detail"]

    scores = [r for r in api.ok("ed-viewer", "GET", "/v1/economy/mu-scores/2042")
              if r["code"] in api.codes.values()]
    expected = {}
    for key, mu in (("A", 10), ("B", 5)):
        months = SEED[key][2042]
        tax, va = sum(m[2] for m in months), sum(m[1] for m in months)
        expected[api.codes[key]] = (0.4 * tax / mu / 2 + 0.6 * va / mu / 10) * 100
    assert [r["code"] for r in scores] == sorted(expected, key=lambda k: -expected[k])
    for r in scores:
        assert r["score"] == pytest.approx(expected[r["code"]], abs=0.01)
    assert api.get("ed-viewer", "/v1/economy/mu-scores/2043").status_code == 404
    towns = api.ok("ed-viewer", "GET", "/v1/economy/mu-scores/2042/groups",
                   params={"by": "town"})
    town = next(g for g in towns if g["group"] == api.town)
    tax = sum(m[2] for k in "AB" for m in SEED[k][2042])
    assert (town["firms"], town["mu"]) == (2, 15)
    assert town["per_mu"]["tax"] == pytest.approx(tax / 15, abs=1e-3)
    colours = api.ok("ed-viewer", "GET", "/v1/economy/power-colours",
                     params={"month": "2042-04-01", "by": "industry"})
    liquor = next(g for g in colours if g["group"] == api.industry)
    assert (liquor["red"], liquor["green"], liquor["none"]) == (1, 1, 1)
