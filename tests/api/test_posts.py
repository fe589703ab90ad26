"""Posts owned by users: the contract, cascades, and a constant number of queries."""

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.db.session import db
from app.models import Post, User
from app.schemas.posts import PostListQuery, PostPage, PostRead
from app.services import posts
from tests.factories import make_post, make_user
from tests.helpers import assert_problem, counting_statements


def test_create_post_returns_201_location_and_author(app: Flask, client: FlaskClient) -> None:
    author = make_user(app, username="writer")
    response = client.post(f"/users/{author.id}/posts", json={"title": "Hello", "body": "World"})
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert response.headers["Location"] == f"/posts/{body['id']}"
    assert body["author_id"] == author.id
    assert body["author"] == {"id": author.id, "username": "writer"}
    assert set(body) == {"id", "author_id", "author", "title", "body", "created_at", "updated_at"}
    assert client.get(f"/posts/{body['id']}").get_json() == body


def test_create_post_for_absent_user_is_404(client: FlaskClient) -> None:
    assert_problem(client.post("/users/999999/posts", json={"title": "t", "body": "b"}), 404)


def test_title_of_201_characters_is_422(app: Flask, client: FlaskClient) -> None:
    author = make_user(app)
    response = client.post(f"/users/{author.id}/posts", json={"title": "x" * 201, "body": ""})
    assert assert_problem(response, 422)["errors"][0]["loc"] == ["body", "title"]  # type: ignore[index]
    ok = client.post(f"/users/{author.id}/posts", json={"title": "x" * 200, "body": ""})
    assert ok.status_code == 201


def test_body_over_the_limit_is_422_or_413(app: Flask, client: FlaskClient) -> None:
    author = make_user(app)
    url = f"/users/{author.id}/posts"
    problem = assert_problem(client.post(url, json={"title": "t", "body": "x" * 100_001}), 422)
    assert problem["errors"][0]["loc"] == ["body", "body"]  # type: ignore[index]
    assert_problem(client.post(url, json={"title": "t", "body": "x" * 2_000_000}), 413)
    assert client.post(url, json={"title": "t", "body": "é" * 100_000}).status_code == 201


def test_nul_character_in_body_is_422_not_500(app: Flask, client: FlaskClient) -> None:
    author = make_user(app)
    response = client.post(f"/users/{author.id}/posts", json={"title": "t", "body": "a\x00b"})
    assert_problem(response, 422)


def test_patch_and_put_change_only_given_fields(app: Flask, client: FlaskClient) -> None:
    post = make_post(app, make_user(app), title="Old", body="Text")
    patched = client.patch(f"/posts/{post.id}", json={"title": "New"}).get_json()
    assert (patched["title"], patched["body"]) == ("New", "Text")
    put = client.put(f"/posts/{post.id}", json={"body": "Other"}).get_json()
    assert (put["title"], put["body"]) == ("New", "Other")
    assert put["author"]["id"] == post.author_id
    assert put["updated_at"] > put["created_at"]


def test_delete_post_is_204_then_404(app: Flask, client: FlaskClient) -> None:
    post = make_post(app, make_user(app))
    assert client.delete(f"/posts/{post.id}").status_code == 204
    assert_problem(client.get(f"/posts/{post.id}"), 404)
    assert_problem(client.delete(f"/posts/{post.id}"), 404)
    assert_problem(client.patch(f"/posts/{post.id}", json={"title": "x"}), 404)


def test_deleting_a_user_deletes_their_posts(app: Flask, client: FlaskClient) -> None:
    doomed = make_user(app)
    kept = make_user(app)
    for _ in range(3):
        make_post(app, doomed)
    survivor = make_post(app, kept)
    assert client.delete(f"/users/{doomed.id}").status_code == 204
    with app.app_context():
        remaining = db.session.execute(select(Post.id)).scalars().all()
        assert remaining == [survivor.id]
        assert db.session.get(User, kept.id) is not None


def test_user_posts_of_absent_user_is_404(client: FlaskClient) -> None:
    assert_problem(client.get("/users/999999/posts"), 404)


def test_list_posts_filters_by_author(app: Flask, client: FlaskClient) -> None:
    alice, bob = make_user(app), make_user(app)
    mine = [make_post(app, alice).id for _ in range(3)]
    make_post(app, bob)
    by_filter = client.get(f"/posts?author_id={alice.id}").get_json()["items"]
    by_path = client.get(f"/users/{alice.id}/posts").get_json()["items"]
    assert [p["id"] for p in by_filter] == mine
    assert [p["id"] for p in by_path] == mine
    assert all(p["author"] == {"id": alice.id, "username": alice.username} for p in by_path)


@pytest.mark.parametrize("sort", ["id", "-id", "created_at", "-created_at"])
def test_walk_post_pages_returns_every_post_once(
    app: Flask, client: FlaskClient, sort: str
) -> None:
    author = make_user(app)
    created = {make_post(app, author).id for _ in range(11)}
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, "sort": sort}
        if cursor:
            params["cursor"] = cursor
        page = client.get(f"/users/{author.id}/posts", query_string=params).get_json()
        seen.extend(p["id"] for p in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == len(created)
    assert set(seen) == created


def _statements_per_request(app: Flask, client: FlaskClient, url: str) -> int:
    client.get(url)  # warm-up: verifies and caches the key, writes its last_used_at
    with counting_statements(app) as statements:
        response = client.get(url)
    assert response.status_code == 200
    return len(statements)


def test_listing_posts_costs_the_same_queries_for_1_10_100(app: Flask, client: FlaskClient) -> None:
    authors = [make_user(app) for _ in range(30)]
    for n in range(120):
        make_post(app, authors[n % len(authors)])
    counts = {n: _statements_per_request(app, client, f"/posts?limit={n}") for n in (1, 10, 100)}
    assert len(client.get("/posts?limit=100").get_json()["items"]) == 100
    # The page with its authors, in one statement (the warm-up cached the API key): no N+1.
    assert counts == {1: 1, 10: 1, 100: 1}


def test_listing_a_users_posts_costs_the_same_queries_for_1_10_100(
    app: Flask, client: FlaskClient
) -> None:
    author = make_user(app)
    for _ in range(110):
        make_post(app, author)
    url = f"/users/{author.id}/posts?limit="
    counts = {n: _statements_per_request(app, client, f"{url}{n}") for n in (1, 10, 100)}
    # The user (404 if absent), then the page.
    assert counts == {1: 2, 10: 2, 100: 2}
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Post)).scalar_one() == 110


def test_post_bytes_are_those_of_the_validated_models(app: Flask, client: FlaskClient) -> None:
    # Posts are written from rows without validating them: they must be what PostRead says.
    assert tuple(PostRead.model_fields) == tuple(
        posts.post_item(make_post(app, make_user(app), title="probe"))
    )
    for name in ["Émile", 'quote"and\\back', "<b>&amp;</b>", "日本語"]:
        author = make_user(app, username=name, email=f"{len(name)}.{abs(hash(name))}@ex.com")
        make_post(app, author, title=f"{name} says", body=f"{name}\n\u2028 & <i>")
    for params in [{"limit": 100}, {"limit": 2, "sort": "-created_at"}]:
        response = client.get("/posts", query_string=params)
        with app.test_request_context():
            rows, cursor = posts.list_posts(PostListQuery.model_validate(params))
        items = [PostRead.model_validate(posts.post_item(row)) for row in rows]
        page = PostPage(items=items, next_cursor=cursor)
        assert response.get_data() == page.model_dump_json().encode()
    one = client.get(f"/posts/{rows[0].id}")
    assert one.get_data() == items[0].model_dump_json().encode()
