"""The dashboard in a real headless Chromium against real node processes, used as a person would."""

from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from runtime.conformance.report import AppInfo, GroupResult, PropertyResult, Report
from tests.node.cluster import TASKAPI

from .conftest import Nodes, log_in, screenshot

MANDELBROT = {"width": 96, "height": 64, "parts": 4, "max_iter": 64}
WAIT_MS = 90_000
"""Hang guard for what normally shows within seconds."""


def pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


def submitted(page: Page, app: str) -> None:
    """Wait for the submit form to lead to the new task's page (failing with the form's error, if any)."""
    error = page.locator("#submit-error")
    page.wait_for_function(
        "() => location.pathname.startsWith('/tasks/')"
        " || document.querySelector('#submit-error')?.textContent",
        timeout=WAIT_MS,
    )
    assert "/tasks/" in page.url, error.inner_text()
    assert f"/tasks/{app}-" in page.url


def test_without_the_token_only_the_login_page(nodes: Nodes, browser: Browser) -> None:
    page = browser.new_page()
    for path in ("", "tasks", "providers", "submit", "conformance"):
        page.goto(nodes.requestor_url + path)
        assert page.url == nodes.requestor_url + "login"
        expect(page.locator("label[for=token]")).to_have_text("Control token")
    for path in ("api/stream?view=tasks", "api/apps", "api/session"):
        assert page.request.get(nodes.requestor_url + path).status == 401
    page.fill("#token", "not-the-token")
    page.click("button[type=submit]")
    expect(page.locator("#login-failed")).to_be_visible()
    assert page.context.cookies() == []
    screenshot(page, "login")
    page.close()


def test_submit_mandelbrot_with_a_parameter_file_preview_equals_taskapi_run(
    nodes: Nodes, browser: Browser, tmp_path: Path
) -> None:
    reference = subprocess.Popen(
        [
            TASKAPI,
            "run",
            "mandelbrot",
            *(a for k, v in MANDELBROT.items() for a in ("--set", f"{k}={v}")),
            "--output",
            str(tmp_path / "run"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    page = log_in(browser, nodes.requestor_url, nodes.control_token)
    page.goto(nodes.requestor_url + "submit")
    page.select_option("#app", label="mandelbrot (wasm)")
    expect(page.locator("#param-zoom")).to_have_value("1")
    expect(page.locator("#params")).to_contain_text("Magnification")
    params_file = tmp_path / "mandelbrot-params.json"
    params_file.write_text(json.dumps(MANDELBROT))
    page.set_input_files("#params_file", str(params_file))
    screenshot(page, "submit")
    page.click("#submit-form button[type=submit]")
    submitted(page, "mandelbrot")
    expect(page.locator("#task-state [data-state]")).to_have_attribute(
        "data-state", "finished", timeout=WAIT_MS
    )
    expect(page.locator("#preview")).to_have_attribute("data-parts", "4", timeout=WAIT_MS)
    expect(page.locator("#subtasks tr[data-state=accepted]")).to_have_count(4)
    task_id = page.url.rsplit("/", 1)[1]
    shown = page.request.get(f"{nodes.requestor_url}api/tasks/{task_id}/preview.png")
    assert shown.headers["x-parts"] == "4"
    output = page.request.get(f"{nodes.requestor_url}api/tasks/{task_id}/outputs/image.png")
    assert output.status == 200
    assert reference.wait(WAIT_MS / 1000) == 0, reference.stdout.read() if reference.stdout else ""
    expected = pixels((next((tmp_path / "run").rglob("image.png"))).read_bytes())
    assert expected.shape == (MANDELBROT["height"], MANDELBROT["width"], 3)
    assert np.array_equal(pixels(shown.body()), expected)
    assert np.array_equal(pixels(output.body()), expected)
    screenshot(page, "task")
    page.goto(nodes.requestor_url + "tasks")
    expect(page.locator(f"#tasks tr[data-task='{task_id}'] [data-state]")).to_have_text("finished")
    page.context.close()


def test_a_cheaters_rejected_result_shows_with_its_reason_and_its_task_is_aborted(
    nodes: Nodes, browser: Browser
) -> None:
    page = log_in(browser, nodes.requestor_url, nodes.control_token)
    page.goto(nodes.requestor_url + "submit")
    page.select_option("#app", label="tutorialapp (local)")
    page.fill("#param-input", "dashboard")
    page.fill("#param-difficulty", "12")
    page.fill("#param-subtasks", "4")
    page.click("#submit-form button[type=submit]")
    submitted(page, "tutorialapp")
    task_id = page.url.rsplit("/", 1)[1]
    rejected = page.locator("#subtasks tr[data-state=rejected] .reason").first
    expect(rejected).to_contain_text("nonce", timeout=WAIT_MS)
    reason = rejected.inner_text()
    page.goto(nodes.requestor_url + "providers")
    cheater = page.locator("#providers tr", has=page.locator(".refused", has_text=reason))
    expect(cheater).to_have_count(1)
    # at least the one shown; more where it had further results on their way when the first was judged
    expect(cheater.locator(".rejected-count")).to_have_text(re.compile(r"^\s*[1-9][0-9]* rejected"))
    screenshot(page, "providers")
    page.goto(nodes.requestor_url + "tasks")
    row = page.locator(f"#tasks tr[data-task='{task_id}']")
    expect(row.locator("[data-state]").first).to_have_text("active")
    row.locator("button.abort").click()
    expect(row.locator("[data-state]").first).to_have_text("aborted", timeout=WAIT_MS)
    expect(row).to_contain_text("aborted from the dashboard")
    screenshot(page, "tasks")
    page.context.close()


def test_a_cross_site_post_is_refused(nodes: Nodes, browser: Browser) -> None:
    page = log_in(browser, nodes.requestor_url, nodes.control_token)
    csrf = page.request.get(nodes.requestor_url + "api/session").json()["csrf"]
    submit = nodes.requestor_url + "api/tasks"
    form: dict[str, str | float | bool] = {
        "app": "mandelbrot",
        "params": json.dumps({"width": 8, "height": 8}),
    }
    foreign = page.request.post(
        submit, form=form, headers={"Origin": "http://evil.example", "X-CSRF-Token": csrf}
    )
    assert foreign.status == 403
    no_csrf = page.request.post(submit, form=form, headers={"Origin": nodes.requestor_url.rstrip("/")})
    assert no_csrf.status == 403
    # A page of another site that posts a form to the dashboard in the same browser.
    before = nodes.task_count()
    attack = (
        f"<form method=post action='{submit}'><input name=app value=mandelbrot>"
        "<input name=params value='{}'></form><script>document.forms[0].submit()</script>"
    )
    with page.expect_response(submit) as answer:
        page.goto("data:text/html," + attack)
    assert answer.value.status == 403
    assert nodes.task_count() == before
    page.context.close()


def test_conformance_reports_and_throughput(nodes: Nodes, browser: Browser) -> None:
    report = Report(
        app=AppInfo(
            name="mandelbrot",
            version="0.1.0",
            environment="wasm",
            app_id="c91b19b0c19d" + "0" * 52,
            digest="d" * 64,
            digest_of="module",
        ),
        seed=7,
        examples=5,
        started_at="2026-12-07T12:00:00Z",
        seconds=12.5,
        passed=False,
        properties=[
            PropertyResult(name="verify_accepts_honest", statement="...", status="passed", checks=5),
            PropertyResult(
                name="subtasks_within_max",
                statement="...",
                status="failed",
                checks=2,
                message="handed out 5 subtasks for max_subtasks_count 4",
            ),
        ],
        groups=[GroupResult(name="task", max_examples=5, examples_run=5, runs=1, seconds=12.5)],
        reproduce="taskapi conformance mandelbrot --seed 7",
    )
    report.write(nodes.data_dir / "conformance-reports" / "mandelbrot.json")
    page = log_in(browser, nodes.requestor_url, nodes.control_token)
    page.goto(nodes.requestor_url + "conformance")
    card = page.locator(".report")
    expect(card).to_contain_text("mandelbrot 0.1.0 on wasm")
    expect(card.locator("tr", has_text="subtasks_within_max")).to_contain_text("handed out 5 subtasks")
    screenshot(page, "conformance")
    page.goto(nodes.requestor_url + "throughput")
    expect(page.locator("#throughput-chart polyline")).to_have_count(1)
    expect(page.locator("#view p").first).to_contain_text("in all")
    screenshot(page, "throughput")
    page.context.close()


def test_provider_dashboard_shows_its_work_and_earnings(
    nodes: Nodes, browser: Browser, tmp_path: Path
) -> None:
    # Work of its own: under xdist the tests that submit tasks may run on another worker's nodes.
    requestor = log_in(browser, nodes.requestor_url, nodes.control_token)
    requestor.goto(nodes.requestor_url + "submit")
    requestor.select_option("#app", label="mandelbrot (wasm)")
    params_file = tmp_path / "mandelbrot-params.json"
    params_file.write_text(json.dumps(MANDELBROT))
    requestor.set_input_files("#params_file", str(params_file))
    requestor.click("#submit-form button[type=submit]")
    submitted(requestor, "mandelbrot")
    requestor.context.close()
    page = log_in(browser, nodes.provider_url, nodes.provider_token)
    expect(page.locator("h1")).to_have_text(re.compile(r"Provider [0-9a-f]{32}"))
    expect(page.locator("#view")).to_contain_text("wasm")
    expect(page.locator("#accepted")).not_to_have_text("0 accepted", timeout=WAIT_MS)
    expect(page.locator("#fuel-earned")).not_to_have_text("0")
    screenshot(page, "provider")
    page.context.close()
