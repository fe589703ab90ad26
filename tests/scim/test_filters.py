"""SCIM filters, sorting and paging on /scim/v2/Users, run in SQL on every backend."""

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.helpers import index_plan, listening
from tests.scim.test_users import scim_client, scim_error, user_body  # noqa: F401 - fixture

USERS = [
    ("alice", "Alice", "Liddell", True),
    ("albert", "Albert", "Einstein", True),
    ("bob", "Bob", "Builder", False),
    ("carol", None, None, True),
]


@pytest.fixture
def people(scim_client: FlaskClient) -> dict[str, str]:  # noqa: F811
    """Four provisioned users: name -> SCIM id."""
    ids = {}
    for name, given, family, active in USERS:
        body = user_body(name, active=active)
        if given is None:
            del body["name"]
        else:
            body["name"] = {"givenName": given, "familyName": family}
        response = scim_client.post("/scim/v2/Users", json=body)
        assert response.status_code == 201, response.get_data(as_text=True)
        ids[name] = response.get_json()["id"]
    return ids


def _names(client: FlaskClient, **params: Any) -> list[str]:
    response = client.get("/scim/v2/Users", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    return [item["userName"] for item in body.get("Resources", [])]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('userName eq "ALICE"', ["alice"]),
        ('userName ne "alice"', ["albert", "bob", "carol"]),
        ('userName co "LI"', ["alice"]),
        ('userName sw "al"', ["alice", "albert"]),
        ('userName sw "ALB"', ["albert"]),
        ('userName co "i"', ["alice"]),
        ('emails sw "BOB@"', ["bob"]),
        ('not (emails sw "bob@")', ["alice", "albert", "carol"]),
        ('userName ew "OB"', ["bob"]),
        ('userName gt "bob"', ["carol"]),
        ('userName ge "bob"', ["bob", "carol"]),
        ('userName lt "alice"', ["albert"]),
        ('userName le "alice"', ["alice", "albert"]),
        ("name.givenName pr", ["alice", "albert", "bob"]),
        ("not (name.givenName pr)", ["carol"]),
        ('name.familyName eq "einstein"', ["albert"]),
        ('not (name.familyName eq "einstein")', ["alice", "bob", "carol"]),
        ("active eq false", ["bob"]),
        ('userName sw "a" and active eq true', ["alice", "albert"]),
        ('userName eq "bob" or userName eq "carol"', ["bob", "carol"]),
        ('(userName sw "a" or userName sw "b") and not (active eq false)', ["alice", "albert"]),
        ('emails co "@example.com"', ["alice", "albert", "bob", "carol"]),
        ('emails.value eq "CAROL@example.com"', ["carol"]),
        ('emails[type eq "work" and value co "bob@"]', ["bob"]),
        ('emails[type eq "home"]', []),
        ('externalId eq "ext-bob"', ["bob"]),
        ('externalId eq "EXT-BOB"', []),
        ('meta.created gt "2000-01-01T00:00:00Z"', ["alice", "albert", "bob", "carol"]),
    ],
)
def test_every_operator(
    scim_client: FlaskClient,  # noqa: F811
    people: dict[str, str],
    expression: str,
    expected: list[str],
) -> None:
    assert sorted(_names(scim_client, filter=expression)) == sorted(expected)


def test_id_filters(scim_client: FlaskClient, people: dict[str, str]) -> None:  # noqa: F811
    assert _names(scim_client, filter=f'id eq "{people["bob"]}"') == ["bob"]
    assert _names(scim_client, filter='id eq "not-a-number"') == []


def test_the_filter_runs_in_sql(
    app: Flask,
    scim_client: FlaskClient,  # noqa: F811
    people: dict[str, str],
) -> None:
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    with listening(app, "before_cursor_execute", record):
        assert _names(scim_client, filter='userName sw "al"', count=1) == ["alice"]
    selects = [s for s in sent if "FROM user_account" in s]
    # The count and the page, each with the condition and the page in its own SQL.
    assert len(selects) == 2, selects
    assert all("LIKE" in s for s in selects), selects
    assert "LIMIT" in selects[1], selects


def test_sort_and_pages(scim_client: FlaskClient, people: dict[str, str]) -> None:  # noqa: F811
    assert _names(scim_client, sortBy="userName") == ["albert", "alice", "bob", "carol"]
    descending = _names(scim_client, sortBy="userName", sortOrder="descending")
    assert descending == ["carol", "bob", "alice", "albert"]
    # Users without a given name sort last either way.
    assert _names(scim_client, sortBy="name.givenName")[-1] == "carol"
    page = scim_client.get(
        "/scim/v2/Users", query_string={"sortBy": "userName", "startIndex": 2, "count": 2}
    ).get_json()
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (4, 2, 2)
    assert [u["userName"] for u in page["Resources"]] == ["alice", "bob"]
    counted = scim_client.get("/scim/v2/Users", query_string={"count": 0}).get_json()
    assert counted["totalResults"] == 4
    assert counted.get("Resources", []) == []


def test_attributes_and_excluded_attributes(
    scim_client: FlaskClient,  # noqa: F811
    people: dict[str, str],
) -> None:
    body = scim_client.get(
        "/scim/v2/Users", query_string={"filter": 'userName eq "bob"', "attributes": "userName"}
    ).get_json()
    assert set(body["Resources"][0]) == {"schemas", "id", "userName"}
    body = scim_client.get(
        "/scim/v2/Users",
        query_string={"filter": 'userName eq "bob"', "excludedAttributes": "emails,name"},
    ).get_json()
    assert "emails" not in body["Resources"][0]
    assert "name" not in body["Resources"][0]
    assert body["Resources"][0]["userName"] == "bob"


@pytest.mark.parametrize(
    ("expression", "scim_type"),
    [
        ('userName xx "a"', "invalidFilter"),
        ('favourite eq "a"', "invalidFilter"),
        ('nickName eq "a"', "invalidFilter"),
        ('userName eq "a', "invalidFilter"),
    ],
)
def test_bad_filters_are_400_invalid_filter(
    scim_client: FlaskClient,  # noqa: F811
    expression: str,
    scim_type: str,
) -> None:
    response = scim_client.get("/scim/v2/Users", query_string={"filter": expression})
    scim_error(response, 400, scim_type)


def _count_plan(app: Flask, backend: str, client: FlaskClient, expression: str) -> str:
    """The plan of the count (totalResults) a filter sends: its WHERE alone, which the page's
    SELECT repeats (with a handful of rows MariaDB walks the page's id order instead)."""
    sent: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "FROM user_account" in statement and "count(*)" in statement:
            sent.append((statement, parameters))

    with listening(app, "before_cursor_execute", record):
        _names(client, filter=expression)
    [(statement, parameters)] = sent
    return index_plan(app, backend, statement, parameters)


# sw: PostgreSQL's text_pattern_ops btrees (migration 0016) as a range; MariaDB's unique
# indexes on the case-folding columns as a range (LIKE 'ali%'); SQLite's on lower() as the
# range folded_match adds. co: the trigram indexes on PostgreSQL, and under 3 characters its
# side table's substrings (migration 0019); on MariaDB the Mroonga side table's bigram index
# (migration 0017; CI installs the plugin); nothing on SQLite.
SERVED = {
    ('userName sw "ALI"', "postgresql"): "Bitmap Index Scan on ix_user_account_username_prefix",
    ('emails sw "ali"', "postgresql"): "Bitmap Index Scan on ix_user_account_email_prefix",
    ('userName co "lic"', "postgresql"): "Bitmap Index Scan on ix_user_account_username_trgm",
    ('emails co "ice@exa"', "postgresql"): "Bitmap Index Scan on ix_user_account_email_trgm",
    ('userName co "LI"', "postgresql"): "Bitmap Index Scan on ix_user_search_username_grams",
    ('emails co "IC"', "postgresql"): "Bitmap Index Scan on ix_user_search_email_grams",
    ('userName sw "ALI"', "mysql"): "range uq_user_account_username_lower",
    ('emails sw "ali"', "mysql"): "range uq_user_account_email_lower",
    ('userName co "lic"', "mysql"): "fulltext ft_user_search_username",
    ('emails co "ice@exa"', "mysql"): "fulltext ft_user_search_email",
    ('userName co "LI"', "mysql"): "fulltext ft_user_search_username",
    ('emails co "IC"', "mysql"): "fulltext ft_user_search_email",
    ('userName sw "ALI"', "sqlite"): "USING INDEX uq_user_account_username_lower (<expr>>? AND",
    ('emails sw "ali"', "sqlite"): "USING INDEX uq_user_account_email_lower (<expr>>? AND",
}


@pytest.mark.parametrize("expression", sorted({expression for expression, _ in SERVED}))
def test_sw_and_co_are_served_by_an_index_where_one_serves_them(
    app: Flask,
    backend: str,
    scim_client: FlaskClient,  # noqa: F811
    people: dict[str, str],
    expression: str,
) -> None:
    plan = _count_plan(app, backend, scim_client, expression)
    wanted = SERVED.get((expression, backend))
    if wanted is None:  # co on SQLite: no index has substrings (databases.md)
        assert "_trgm" not in plan, plan
        assert _names(scim_client, filter=expression) == ["alice"]
    else:
        assert wanted in plan, plan


@pytest.mark.postgresql_only("the plan is read from PostgreSQL's EXPLAIN")
def test_co_shorter_than_a_trigram_is_not_sent_to_the_trigram_index(
    app: Flask,
    backend: str,
    scim_client: FlaskClient,  # noqa: F811
    people: dict[str, str],
) -> None:
    # pg_trgm has no trigram to look up in "li": GIN would hand back every row to recheck.
    # The side table names the candidates, and strpos on the user's row decides.
    plan = _count_plan(app, backend, scim_client, 'userName co "LI"')
    assert "_trgm" not in plan, plan
    assert "strpos(lower" in plan, plan
    assert "ix_user_search_username_grams" in plan, plan


def test_cursor_pages_neither_repeat_nor_skip(
    app: Flask,
    scim_client: FlaskClient,  # noqa: F811
    people: dict[str, str],
) -> None:
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        body = scim_client.get(
            "/scim/v2/Users", query_string={"cursor": cursor, "count": 3}
        ).get_json()
        seen += [u["userName"] for u in body.get("Resources", [])]
        if pages == 0:
            # Rows come and go between pages: the next page is still exactly what follows.
            scim_client.delete(f"/scim/v2/Users/{people['alice']}")
            seen.remove("alice")
        pages += 1
        if "nextCursor" not in body:
            break
        cursor = body["nextCursor"]
    assert seen == ["albert", "bob", "carol"]
    assert pages == 2
    config = scim_client.get("/scim/v2/ServiceProviderConfig").get_json()
    assert config["pagination"]["cursor"] is True


@pytest.mark.parametrize("cursor", ["after-x", "nonsense", "after-" + "9" * 19])
def test_a_cursor_not_made_here_is_invalid_cursor(
    scim_client: FlaskClient,  # noqa: F811
    cursor: str,
) -> None:
    response = scim_client.get("/scim/v2/Users", query_string={"cursor": cursor})
    scim_error(response, 400, "invalidCursor")
