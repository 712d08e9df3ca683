"""End to end in a real headless Chromium (Debian's `chromium` package; no browser download):
the dashboard served by uvicorn, jobs run by a real worker, an operator sent to the login form,
logging in (a wrong token first), finding a failed job with the filter form, reading its
traceback, retrying it (the form's CSRF token) and logging out.

Skipped only where /usr/bin/chromium is missing and JOBQ_REQUIRE_BROWSER is unset (CI sets
it after `apt-get install -y chromium`).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import jobfuncs
import pytest

import jobq
from jobq.web import create_app

CHROMIUM = "/usr/bin/chromium"
TOKEN = "browser-token"

if not Path(CHROMIUM).exists() and not os.environ.get("JOBQ_REQUIRE_BROWSER"):
    pytest.skip(f"{CHROMIUM} missing (apt-get install -y chromium)", allow_module_level=True)

playwright_sync = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def served(db: jobq.Database) -> Iterator[str]:
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(db, token=TOKEN), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_operator_finds_and_retries_a_failed_job(
    db: jobq.Database, served: str, tmp_path: Path
) -> None:
    queue = db.queue()
    with db.worker(poll_interval=0.05):
        ok = queue.put(jobq.Job(jobfuncs.add, 40, 2))
        bad = queue.put(jobq.Job(jobfuncs.fail, "browser boom"))
        assert ok.wait(timeout=20) == 42
        with pytest.raises(jobq.JobFailed):
            bad.wait(timeout=20)
        with playwright_sync.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            try:
                page = browser.new_page()
                page.set_default_timeout(15000)
                # every page needs the token: the job page sends us to the login form
                page.goto(f"{served}/jobs/{bad.id}")
                assert page.locator("h1").inner_text() == "Log in"
                assert page.url.startswith(f"{served}/login?next=")
                page.fill("input[name=token]", "wrong")
                page.click("button:has-text('log in')")
                page.wait_for_selector("#error")
                assert page.locator("#error").inner_text() == "wrong token"
                page.fill("input[name=token]", TOKEN)
                page.click("button:has-text('log in')")
                page.wait_for_selector("#traceback")  # back where we were going
                assert page.url == f"{served}/jobs/{bad.id}"
                page.goto(served + "/")
                assert page.locator("h1").inner_text() == "Queues"
                assert page.locator("svg#throughput rect.bad").count() > 0
                assert "alive" in page.locator("table").nth(1).inner_text()
                page.screenshot(path=str(tmp_path / "home.png"))
                page.click("header >> text=failed")
                page.wait_for_selector("input[name=q]")
                page.fill("input[name=q]", "failed callable:fail")
                page.click("text=show")
                page.wait_for_selector("#total")
                assert page.locator("#total").inner_text() == "1"
                page.click(f"a[href='/jobs/{bad.id}']")
                page.wait_for_selector("#traceback")
                assert "browser boom" in page.locator("#traceback").inner_text()
                page.click("text=brief")
                page.wait_for_selector("text=Traceback (brief)")
                page.click("button:has-text('retry')")
                page.wait_for_selector("text=retried as job")
                copy_id = bad.refresh().annotations["retried_as"]
                assert page.url.startswith(f"{served}/jobs/{copy_id}")
                with pytest.raises(jobq.JobFailed):
                    db.get_job(copy_id).wait(timeout=20)  # the worker ran the copy
                page.goto(f"{served}/jobs/{copy_id}")
                assert "browser boom" in page.locator("#traceback").inner_text()
                page.screenshot(path=str(tmp_path / "job.png"), full_page=True)
                # log out: the pages need the token again
                page.click("header >> button:has-text('log out')")
                page.wait_for_selector("text=logged out")
                page.goto(f"{served}/jobs/{copy_id}")
                assert page.locator("h1").inner_text() == "Log in"
            finally:
                browser.close()
