"""The web dashboard through Starlette's TestClient, on both engines (auth itself: test_auth)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import jobfuncs
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

import jobq
from jobq.model.failure import failure_dict
from jobq.store.base import Outcome
from jobq.web import create_app

TOKEN = "s3cret-token"
UUID = "33333333-3333-4333-8333-333333333333"


@pytest.fixture
def client(db: jobq.Database) -> Iterator[TestClient]:
    with TestClient(create_app(db, token=TOKEN)) as test_client:
        yield test_client


def log_in(client: TestClient, token: str = TOKEN) -> str:
    """Log in with the form; returns the CSRF token the pages then carry."""
    response = client.post("/login", data={"token": token}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/").text)


def csrf_of(page: str) -> str:
    match = re.search(r'<meta name="jobq-csrf" content="([0-9a-f]+)">', page)
    assert match, "no CSRF token in the page"
    return match.group(1)


def fail_job(db: jobq.Database, job: jobq.Job) -> None:
    now = db.clock.now()
    store = db.store
    store.activate_dispatcher(UUID, "web-host", 1, 5.0, 30.0, now)
    store.set_agent(UUID, job.queue_name or "", "main", 2, None)
    [record] = store.claim("", UUID, "main", 1, now, accept=lambda r: r.id == job.id)
    store.start(record.id, record.attempt, UUID, now)
    try:
        raise RuntimeError("dashboard boom")
    except RuntimeError as error:
        failure = jobq.Failure.from_exception(error)
    store.store_result(
        record.id,
        record.attempt,
        UUID,
        Outcome(None, str(failure), failed=True, failure=failure_dict(failure)),
        now,
    )


def test_pages(db: jobq.Database, client: TestClient) -> None:
    queue = db.queue()
    pending = queue.put(jobq.Job(jobfuncs.add, 1, 2))
    failed = queue.put(jobq.Job(jobfuncs.fail))
    callback = failed.add_callback(jobfuncs.failure_type)
    db.store.set_annotation(pending.id, "progress", 0.5)  # type: ignore[arg-type]
    fail_job(db, failed)
    log_in(client)
    home = client.get("/")
    assert home.status_code == 200
    assert "<h2>Queues</h2>" in home.text and UUID in home.text and 'id="throughput"' in home.text
    jobs = client.get("/jobs", params={"q": "pending callable:ad*"})
    assert jobs.status_code == 200 and "jobfuncs.add(1, 2)" in jobs.text
    assert "<b id='total'>1</b>" in jobs.text
    bad = client.get("/jobs", params={"q": "pending start:2M"})
    assert bad.status_code == 400 and "must start with" in bad.text
    page = client.get(f"/jobs/{pending.id}")
    assert page.status_code == 200 and 'aria-valuenow="50"' in page.text
    failed_page = client.get(f"/jobs/{failed.id}", params={"detail": "brief"})
    assert 'id="traceback"' in failed_page.text and "dashboard boom" in failed_page.text
    assert f'href="/jobs/{callback.id}"' in failed_page.text  # the callbacks tree
    assert client.get("/jobs/999999").status_code == 404
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'jobq_jobs{queue="",status="pending"} 2' in metrics.text  # the job and its callback
    assert client.get("/api/status").json()[""]["len"] == 2
    assert client.get(f"/api/jobs/{failed.id}").json()["failed"] is True


def test_actions_need_the_token(db: jobq.Database, client: TestClient) -> None:
    job = db.queue().put(jobq.Job(jobfuncs.add, 1, 2))
    assert client.post("/actions/cancel", data={"job_id": job.id}).status_code == 403
    wrong = {"Authorization": "Bearer nope"}
    assert client.post("/actions/pause", data={"queue": ""}, headers=wrong).status_code == 403
    wrong_login = client.post("/login", data={"token": "nope"})
    assert wrong_login.status_code == 401 and "wrong token" in wrong_login.text
    csrf = log_in(client)
    # now logged in (session cookie): actions work with the page's CSRF token, and are offered
    assert "pause</button>" in client.get("/").text
    response = client.post("/actions/pause", data={"queue": "", "csrf": csrf})
    assert response.status_code == 200 and db.store.paused_queues() == {""}
    client.post("/actions/resume", data={"queue": "", "csrf": csrf})
    assert db.store.paused_queues() == set()
    response = client.post(
        "/actions/cancel",
        data={"job_id": job.id, "csrf": csrf},
        headers={"accept": "text/html"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and job.refresh().status == "new"
    conflict = client.post("/actions/cancel", data={"job_id": job.id, "csrf": csrf})
    assert conflict.status_code == 409 and "can only cancel" in conflict.json()["error"]
    client.post("/logout", data={"csrf": csrf})
    assert client.post("/actions/pause", data={"queue": "", "csrf": csrf}).status_code == 403


def test_bearer_token_without_login_and_retry(db: jobq.Database) -> None:
    failed = db.queue().put(jobq.Job(jobfuncs.fail))
    fail_job(db, failed)
    with TestClient(create_app(db, token=TOKEN)) as client:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        response = client.post("/actions/retry", data={"job_id": failed.id}, headers=headers)
        assert response.status_code == 200 and "retried+as+job" in response.json()["location"]
    assert failed.refresh().annotations["retried_as"] > failed.id  # type: ignore[operator]


def test_no_token_means_no_actions_and_a_hook_can_allow(db: jobq.Database) -> None:
    db.queue()  # the default queue exists, as the home page that pauses it lists it
    with TestClient(create_app(db)) as client:
        assert "Actions are disabled" in client.get("/").text
        assert client.post("/actions/pause", data={"queue": ""}).status_code == 403
    app = create_app(db, authorize=lambda request: request.headers.get("x-user") == "ops")
    with TestClient(app) as client:
        assert client.post("/actions/pause", data={"queue": ""}).status_code == 403
        # the hook's yes also needs the CSRF token of its pages (bound to a jobq_csrf cookie)
        ops = {"x-user": "ops"}
        no_csrf = client.post("/actions/pause", data={"queue": ""}, headers=ops)
        assert no_csrf.status_code == 403 and db.store.paused_queues() == set()
        csrf = csrf_of(client.get("/", headers=ops).text)
        ok = client.post("/actions/pause", data={"queue": "", "csrf": csrf}, headers=ops)
        assert ok.status_code == 200 and db.store.paused_queues() == {""}


def test_mounted_under_a_prefix(db: jobq.Database) -> None:
    job = db.queue().put(jobq.Job(jobfuncs.add, 1, 2))
    outer = Starlette(routes=[Mount("/ops/jobq", app=create_app(db))])
    with TestClient(outer) as client:
        page = client.get("/ops/jobq/jobs", params={"q": "pending"})
        assert page.status_code == 200 and f'href="/ops/jobq/jobs/{job.id}"' in page.text
        assert client.get(f"/ops/jobq/jobs/{job.id}").status_code == 200


def test_out_of_range_numbers_are_answered_not_500(db: jobq.Database, client: TestClient) -> None:
    db.queue().put(jobq.Job(jobfuncs.add, 1, 2))
    log_in(client)
    huge = 10**20
    assert client.get(f"/jobs/{huge}").status_code == 404
    response = client.get(f"/api/jobs/{huge}")
    assert response.status_code == 404 and "no job with id" in response.json()["error"]
    listing = client.get(f"/jobs?q=pending&offset={huge}&limit={huge}")
    assert listing.status_code == 200
    bad = client.get(f"/jobs?q=completed+end:since{huge}D")
    assert bad.status_code == 400 and "at most 36525D" in bad.text
