"""The dashboard's auth through Starlette's TestClient, on both engines: every read needs the
token once one is set, signed sessions that expire and end at logout, CSRF on every POST."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import jobfuncs
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

import jobq
from jobq.testing import MovableClock
from jobq.web import create_app
from web.test_dashboard import TOKEN, csrf_of, fail_job, log_in

BEARER = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "a-shared-session-secret"


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def app(db: jobq.Database, clock: MovableClock) -> Starlette:
    return create_app(db, token=TOKEN, clock=clock.now)


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def job(db: jobq.Database) -> jobq.Job:
    return db.queue().put(jobq.Job(jobfuncs.add, 1, 2))


def pages(job_id: int) -> list[str]:
    return ["/", "/dispatchers", "/jobs?q=pending", f"/jobs/{job_id}"]


def apis(job_id: int) -> list[str]:
    return ["/metrics", "/api/status", f"/api/jobs/{job_id}"]


def refused(client: TestClient, path: str, **kwargs: object) -> bool:
    """The page went to the login form, or the API answered 401."""
    response = client.get(path, follow_redirects=False, **kwargs)  # type: ignore[arg-type]
    if path.startswith(("/api/", "/metrics")):
        return response.status_code == 401 and "authentication required" in response.json()["error"]
    return response.status_code == 303 and response.headers["location"].startswith("/login?next=")


def test_every_page_and_api_needs_auth(client: TestClient, job: jobq.Job) -> None:
    assert job.id is not None
    for path in pages(job.id) + apis(job.id):
        assert refused(client, path), path
        assert client.get(path, headers=BEARER).status_code == 200, path
        wrong = {"Authorization": "Bearer nope"}
        assert refused(client, path, headers=wrong), path
    unauthorized = client.get(f"/api/jobs/{job.id}")
    assert unauthorized.headers["www-authenticate"] == "Bearer"
    assert "jobfuncs" not in unauthorized.text
    log_in(client)
    for path in pages(job.id) + apis(job.id):
        assert client.get(path).status_code == 200, path
    # a wrong Bearer header is not rescued by a good session cookie
    assert refused(client, "/api/status", headers={"Authorization": "Bearer nope"})
    # the health check stays open: it shows nothing
    with TestClient(client.app) as anonymous:
        health = anonymous.get("/healthz")
        assert health.status_code == 200 and health.text == "ok\n"


def test_the_login_form_keeps_where_you_were_going(client: TestClient, job: jobq.Job) -> None:
    response = client.get(f"/jobs/{job.id}?detail=brief", follow_redirects=False)
    location = response.headers["location"]
    assert parse_qs(urlsplit(location).query)["next"] == [f"/jobs/{job.id}?detail=brief"]
    form = client.get(location)
    assert form.status_code == 200 and 'name="token"' in form.text
    assert f'value="/jobs/{job.id}?detail=brief"' in form.text
    done = client.post(
        "/login",
        data={"token": TOKEN, "next": f"/jobs/{job.id}?detail=brief"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == f"/jobs/{job.id}?detail=brief"
    for elsewhere in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        away = client.post(
            "/login", data={"token": TOKEN, "next": elsewhere}, follow_redirects=False
        )
        assert away.headers["location"] == "/", elsewhere


def test_a_wrong_token_shows_the_form_again(client: TestClient) -> None:
    response = client.post("/login", data={"token": "nope", "next": "/dispatchers"})
    assert response.status_code == 401
    assert 'id="error"' in response.text and "wrong token" in response.text
    assert 'name="token"' in response.text and 'value="/dispatchers"' in response.text
    assert "jobq_session" not in response.headers.get("set-cookie", "")
    assert refused(client, "/")


def test_the_session_cookie(client: TestClient) -> None:
    response = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("jobq_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Max-Age=43200" in cookie and "Secure" not in cookie
    assert TOKEN not in cookie
    with TestClient(client.app, base_url="https://testserver") as https:
        secure = https.post("/login", data={"token": TOKEN}, follow_redirects=False)
        assert "Secure" in secure.headers["set-cookie"]


def test_a_session_expires(db: jobq.Database, clock: MovableClock, client: TestClient) -> None:
    log_in(client)
    clock.advance(dt.timedelta(hours=11, minutes=59))
    assert client.get("/").status_code == 200
    clock.advance(dt.timedelta(minutes=2))
    assert refused(client, "/") and refused(client, "/api/status")
    short = create_app(db, token=TOKEN, clock=clock.now, session_max_age=dt.timedelta(minutes=5))
    with TestClient(short) as other:
        log_in(other)
        clock.advance(dt.timedelta(minutes=4))
        assert other.get("/").status_code == 200
        clock.advance(dt.timedelta(minutes=2))
        assert refused(other, "/")


def test_logout_ends_the_session_even_for_a_copied_cookie(client: TestClient) -> None:
    csrf = log_in(client)
    copied = client.cookies["jobq_session"]
    out = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"].startswith("/login")
    assert 'jobq_session=""' in out.headers["set-cookie"]  # cleared
    assert refused(client, "/")
    with TestClient(client.app, cookies={"jobq_session": copied}) as thief:
        assert refused(thief, "/") and refused(thief, "/api/status")
    # logging in again gives a new session
    log_in(client)
    assert client.get("/").status_code == 200


def test_logout_needs_the_csrf_token(client: TestClient) -> None:
    log_in(client)
    assert client.post("/logout", data={}, follow_redirects=False).status_code == 403
    assert client.get("/").status_code == 200  # still logged in


def test_forged_and_foreign_cookies_are_refused(
    db: jobq.Database, clock: MovableClock, client: TestClient
) -> None:
    log_in(client)
    good = client.cookies["jobq_session"]
    payload, signature = good.split(".")
    for bad in (
        f"{payload}.{signature[:-2]}AA",
        f"{payload[:-2]}AA.{signature}",
        payload,
        "garbage",
        good + ".x",
    ):
        with TestClient(client.app, cookies={"jobq_session": bad}) as forger:
            assert refused(forger, "/"), bad
    # another process (its own random key) does not accept it; a shared secret makes them agree
    with TestClient(
        create_app(db, token=TOKEN, clock=clock.now), cookies={"jobq_session": good}
    ) as c:
        assert refused(c, "/")
    first = create_app(db, token=TOKEN, clock=clock.now, session_secret=SECRET)
    second = create_app(db, token=TOKEN, clock=clock.now, session_secret=SECRET)
    rotated = create_app(db, token=TOKEN + "2", clock=clock.now, session_secret=SECRET)
    with TestClient(first) as one:
        log_in(one)
        shared = one.cookies["jobq_session"]
    with TestClient(second, cookies={"jobq_session": shared}) as two:
        assert two.get("/").status_code == 200
    with TestClient(rotated, cookies={"jobq_session": shared}) as three:
        assert refused(three, "/")  # a new token ends the old sessions
    with pytest.raises(ValueError, match="at least 16"):
        create_app(db, token=TOKEN, session_secret="short")
    with pytest.raises(ValueError, match="must not be empty"):
        create_app(db, token="")


def test_posts_without_csrf_or_from_elsewhere_are_refused(
    db: jobq.Database, client: TestClient, job: jobq.Job
) -> None:
    csrf = log_in(client)
    fields = {"job_id": str(job.id), "csrf": csrf}
    attempts = [
        ({"job_id": str(job.id)}, {}),  # no CSRF token
        ({"job_id": str(job.id), "csrf": "0" * 64}, {}),  # a wrong one
        (fields, {"Origin": "http://evil.example"}),
        (fields, {"Origin": "http://testserver:9999"}),  # another local port
        (fields, {"Origin": "null"}),
        (fields, {"Referer": "http://evil.example/page"}),
        (fields, {"Sec-Fetch-Site": "cross-site"}),
    ]
    for data, headers in attempts:
        response = client.post("/actions/cancel", data=data, headers=headers)
        assert response.status_code == 403, (data, headers)
        assert "refused" in response.json()["error"]
        assert db.get_job(job.id).status == "pending"  # type: ignore[arg-type]
    # a text/plain body (which any site's form can send) is refused even with the right fields
    plain = client.post(
        "/actions/cancel",
        content=f"job_id={job.id}&csrf={csrf}",
        headers={"Content-Type": "text/plain"},
    )
    assert plain.status_code == 403 and "must be a form" in plain.json()["error"]
    multipart = client.post("/actions/cancel", data=fields, files={"f": ("f", b"x")})
    assert multipart.status_code == 403
    # a browser shows the refusal as a page
    page = client.post(
        "/actions/cancel",
        data=fields,
        headers={"Origin": "http://evil.example", "Accept": "text/html"},
    )
    assert (
        page.status_code == 403 and "another site" in page.text and "<h1>Refused</h1>" in page.text
    )
    assert db.get_job(job.id).status == "pending"  # type: ignore[arg-type]
    # the Bearer token needs no CSRF token, but still no foreign Origin
    foreign = client.post(
        "/actions/pause", data={"queue": ""}, headers={**BEARER, "Origin": "http://evil.example"}
    )
    assert foreign.status_code == 403 and db.store.paused_queues() == set()
    # the same session with its CSRF token, from its own origin: performed
    ok = client.post("/actions/cancel", data=fields, headers={"Origin": "http://testserver"})
    assert ok.status_code == 200 and db.get_job(job.id).status == "new"  # type: ignore[arg-type]


def test_the_pages_forms_carry_the_csrf_token(
    db: jobq.Database, client: TestClient, job: jobq.Job
) -> None:
    csrf = log_in(client)
    page = client.get(f"/jobs/{job.id}").text
    assert f'<input type="hidden" name="csrf" value="{csrf}">' in page  # cancel / fail forms
    assert 'action="/logout"' in page
    with TestClient(client.app) as other:
        assert log_in(other) != csrf  # one per session
    assert client.post("/actions/fail", data={"job_id": job.id, "csrf": csrf}).status_code == 200
    assert db.get_job(job.id).failed  # type: ignore[arg-type]


def test_login_posts_are_checked_too(client: TestClient) -> None:
    response = client.post(
        "/login",
        data={"token": TOKEN},
        headers={"Origin": "http://evil.example"},
        follow_redirects=False,
    )
    assert response.status_code == 403 and "jobq_session" not in response.headers.get(
        "set-cookie", ""
    )
    plain = client.post("/login", content=f"token={TOKEN}", headers={"Content-Type": "text/plain"})
    assert plain.status_code == 403


def test_allowed_origins_for_a_proxy(db: jobq.Database, job: jobq.Job) -> None:
    app = create_app(db, token=TOKEN, allowed_origins=["https://ops.example.com/"])
    with TestClient(app) as client:
        csrf = log_in(client)
        fields = {"job_id": str(job.id), "csrf": csrf}
        assert (
            client.post(
                "/actions/cancel", data=fields, headers={"Origin": "https://x.example"}
            ).status_code
            == 403
        )
        proxied = client.post(
            "/actions/cancel", data=fields, headers={"Origin": "https://ops.example.com"}
        )
        assert proxied.status_code == 200


def test_a_hook_guards_the_reads_too(db: jobq.Database, job: jobq.Job) -> None:
    app = create_app(db, authorize=lambda request: request.headers.get("x-user") == "ops")
    with TestClient(app) as client:
        page = client.get(f"/jobs/{job.id}")
        assert page.status_code == 401 and "jobfuncs" not in page.text
        assert client.get("/api/status").status_code == 401
        ops = {"x-user": "ops"}
        assert client.get(f"/api/jobs/{job.id}", headers=ops).status_code == 200
        csrf = csrf_of(client.get(f"/jobs/{job.id}", headers=ops).text)
        assert "jobq_csrf" in client.cookies
        with TestClient(app) as other:  # another browser: another cookie, the token is no good
            other.get("/", headers=ops)
            stolen = other.post(
                "/actions/cancel", data={"job_id": job.id, "csrf": csrf}, headers=ops
            )
            assert stolen.status_code == 403
        ok = client.post("/actions/cancel", data={"job_id": job.id, "csrf": csrf}, headers=ops)
        assert ok.status_code == 200 and job.refresh().status == "new"


def test_without_auth_reads_stay_open_and_actions_off(db: jobq.Database, job: jobq.Job) -> None:
    with TestClient(create_app(db)) as client:
        for path in pages(job.id) + apis(job.id):  # type: ignore[arg-type]
            assert client.get(path).status_code == 200, path
        assert client.post("/actions/cancel", data={"job_id": job.id}).status_code == 403
        form = client.post("/login", data={"token": "x"})
        assert form.status_code == 400 and "no token" in form.text
    assert job.refresh().status == "pending"


def test_mounted_with_a_token(db: jobq.Database) -> None:
    failed = db.queue().put(jobq.Job(jobfuncs.fail))
    fail_job(db, failed)
    outer = Starlette(routes=[Mount("/ops/jobq", app=create_app(db, token=TOKEN))])
    with TestClient(outer) as client:
        away = client.get(f"/ops/jobq/jobs/{failed.id}", follow_redirects=False)
        assert away.headers["location"].startswith("/ops/jobq/login?next=%2Fops%2Fjobq%2Fjobs")
        login = client.post(
            "/ops/jobq/login",
            data={"token": TOKEN, "next": f"/ops/jobq/jobs/{failed.id}"},
            follow_redirects=False,
        )
        assert "Path=/ops/jobq" in login.headers["set-cookie"]
        assert login.headers["location"] == f"/ops/jobq/jobs/{failed.id}"
        page = client.get(f"/ops/jobq/jobs/{failed.id}")
        csrf = csrf_of(page.text)
        assert 'action="/ops/jobq/actions/retry"' in page.text
        done = client.post("/ops/jobq/actions/retry", data={"job_id": failed.id, "csrf": csrf})
        assert done.status_code == 200
