"""End to end in a real browser: Debian's chromium driven by Playwright against `streamlit run`.

Upload a PDF on the Library page, ask about it on Chat, open a citation, rate the answer, and
find it on Review. With RAG_SCREENSHOTS=docs the test also refreshes the screenshots that the
README shows.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.llm_server import free_port

CHROMIUM = "/usr/bin/chromium"
SHOTS = os.environ.get("RAG_SCREENSHOTS")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    data = tmp_path_factory.mktemp("e2e-data")
    port = free_port()
    env = {**os.environ, "RAG_DATA_DIR": str(data), "RAG_LLM_BASE_URL": ""}
    log = open(tmp_path_factory.mktemp("e2e-log") / "streamlit.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=2).read()
            break
        except OSError:
            assert proc.poll() is None, "streamlit exited early"
            time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(20)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        yield b
        b.close()


def shot(page, name: str) -> None:
    if SHOTS:
        Path(ROOT / SHOTS).mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(500)
        page.screenshot(path=str(ROOT / SHOTS / f"{name}.png"), full_page=False)


def go(page, url: str, title: str) -> None:
    page.get_by_role("link", name=title).first.click()
    page.get_by_role("heading", name=re.compile(title.split()[0])).first.wait_for(timeout=60_000)


def test_upload_ask_cite_rate_review(app_url, browser, sample_pdf):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(120_000)
    page.goto(app_url)
    page.get_by_text("Chat with your documents").wait_for()

    # Library: upload the PDF, see it indexed.
    go(page, app_url, "Library")
    page.locator("input[type=file]").set_input_files(str(sample_pdf))
    page.get_by_text("user-guide.pdf").first.wait_for()
    page.get_by_role("button", name="Index files").click()
    page.get_by_text(re.compile(r"Done in .* index version 1")).wait_for()
    page.get_by_role("heading", name="Documents (1)").wait_for()
    shot(page, "library")

    # Chat: ask, get a cited answer, open the citation.
    go(page, app_url, "Chat")
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill("How do I remove a document from the index?")
    box.press("Enter")
    cite = page.get_by_role("button", name=re.compile(r"^\[\d+\] user-guide\.pdf p\.\d+ \(verified"))
    cite.first.wait_for()
    cite.first.click()
    page.get_by_role("heading", name=re.compile(r"^\[\d+\] user-guide\.pdf")).wait_for()
    # The panel renders element by element: wait for the caption, do not count at once.
    page.get_by_text(re.compile("Verified, support")).first.wait_for()

    # Rate it: thumbs up is saved at once.
    page.get_by_test_id("stFeedbackButton").first.click()
    page.get_by_text("Rating saved").wait_for()
    shot(page, "chat")

    # Review: the answer is there, with its rating.
    go(page, app_url, "Review")
    page.get_by_text(re.compile(r"1 of 1 logged answers")).wait_for()
    page.get_by_label("Open an answer").click()
    page.get_by_role("option", name=re.compile("How do I remove a document")).click()
    page.get_by_text(re.compile("Rating: thumbs up")).wait_for()
    shot(page, "review")

    go(page, app_url, "Evaluate")
    page.get_by_text(re.compile("stored run")).wait_for()
    shot(page, "evaluate")

    go(page, app_url, "Index status")
    page.get_by_text("Documents").first.wait_for()
    shot(page, "status")
    page.close()
