"""Real node processes with their dashboards, and a real headless Chromium (Debian's, driven by Playwright).

One requestor (`taskapi requestor serve --dashboard`), an honest wasm provider with its own `--dashboard`,
and a cheating tutorialapp provider (tests/node/cheating_provider.py) serve the whole module.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from apps.sdk.process import free_port
from tests.node.cluster import CHEATING_PROVIDER, HOST, TASKAPI, NodeProcess

CHROMIUM = "/usr/bin/chromium"
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "dashboard"
UPDATE_SCREENSHOTS = "TASKAPI_UPDATE_SCREENSHOTS"
"""Set to 1 to refresh docs/dashboard/*.png from this run; otherwise screenshots go to a temporary folder so a
test run leaves the tree clean."""
PROVIDER_TOKEN = "dashboard-provider-token"

if not Path(CHROMIUM).is_file():
    pytest.skip(f"no {CHROMIUM} (scripts/setup_browser installs it)", allow_module_level=True)


@dataclass
class Nodes:
    root: Path
    requestor: NodeProcess
    requestor_url: str
    provider_url: str
    processes: list[NodeProcess]

    @property
    def data_dir(self) -> Path:
        return self.root / "requestor"

    @property
    def control_token(self) -> str:
        return (self.data_dir / "control-token").read_text().strip()

    def task_count(self) -> int:
        """Tasks in the requestor's store (read-only, as an operator would look)."""
        db = sqlite3.connect(f"file:{self.data_dir / 'requestor.sqlite'}?mode=ro", uri=True, timeout=30)
        try:
            return int(db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0])
        finally:
            db.close()

    @property
    def provider_token(self) -> str:
        return (self.root / "provider" / "control-token").read_text().strip()


def _url(process: NodeProcess) -> str:
    process.wait_for_log("dashboard at ")
    line = next(line for line in process.log_text().splitlines() if "dashboard at " in line)
    return line.split("dashboard at ", 1)[1].split(" ", 1)[0]


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    root = tmp_path_factory.mktemp("dashboard")
    env = {**os.environ, "TASKAPI_DATA_DIR": str(root / "home"), "PYTHONPATH": str(Path.cwd())}
    port = free_port()
    address = f"{HOST}:{port}"
    processes: list[NodeProcess] = []

    def start(name: str, args: list[str]) -> NodeProcess:
        processes.append(NodeProcess(name, args, root / f"{name}.log", env))
        return processes[-1]

    try:
        dashboard = ["--dashboard", f"{HOST}:0"]
        requestor = start(
            "requestor",
            [
                TASKAPI,
                "requestor",
                "serve",
                "--listen",
                address,
                "--data-dir",
                str(root / "requestor"),
                "--token",
                PROVIDER_TOKEN,
                *dashboard,
            ],
        )
        requestor_url = _url(requestor)
        provider = start(
            "provider",
            [
                TASKAPI,
                "provider",
                "join",
                address,
                "--token",
                PROVIDER_TOKEN,
                "--env",
                "wasm",
                "--capacity",
                "2",
                "--data-dir",
                str(root / "provider"),
                *dashboard,
            ],
        )
        provider_url = _url(provider)
        cheater = [
            sys.executable,
            str(CHEATING_PROVIDER),
            address,
            "--token",
            PROVIDER_TOKEN,
            "--env",
            "local",
        ]
        start("cheater", [*cheater, "--mode", "wrong", "--data-dir", str(root / "cheater")])
        yield Nodes(root, requestor, requestor_url, provider_url, processes)
    finally:
        for process in reversed(processes):
            process.stop()
        for process in processes:
            print(f"--- {process.name}\n{process.log_text()[-3000:]}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def screenshot(page: Page, name: str) -> None:
    """Save the whole page as NAME.png: into docs/dashboard/ (the pictures docs/dashboard.md shows) when
    TASKAPI_UPDATE_SCREENSHOTS=1, else into a temporary folder."""
    if os.environ.get(UPDATE_SCREENSHOTS) == "1":
        folder = DOCS_SCREENSHOTS
    else:
        folder = Path(tempfile.gettempdir()) / "taskapi-dashboard-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def log_in(browser: Browser, url: str, token: str) -> Page:
    """A fresh browser context logged in through the login form; its page."""
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto(url + "login")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(lambda address: not address.endswith("/login") and "failed" not in address)
    return page
