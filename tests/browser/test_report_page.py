"""The KPI report page in a real browser: the known workload's report, written by `medchain report
--html --json`, opened in headless Chromium by tests/browser/report_page.check.js (playwright-core),
which checks from the DOM and a screenshot that every chart is drawn and every number shown equals
the JSON report's.

Debian's `chromium` is not a prerequisite of `make test`: without it (or without playwright-core in
node_modules) this test is skipped, saying why. `make test-browser` sets MEDCHAIN_BROWSER_TEST=required,
which turns the skip into a failure and keeps the page, the JSON and the screenshot in reports/browser/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from brownie import web3
from click.testing import CliRunner

from medchain.cli import cli

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "tests" / "browser" / "report_page.check.js"
REQUIRED = os.environ.get("MEDCHAIN_BROWSER_TEST") == "required"


def _missing() -> str | None:
    """Why the browser check cannot run here, or None."""
    chromium = os.environ.get("MEDCHAIN_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).is_file():
        return f"no Chromium at {chromium} (Debian: apt-get install -y chromium; then make test-browser)"
    node = shutil.which("node")
    if node is None:
        return "no `node` on PATH"
    found = subprocess.run(
        [node, "-e", "require.resolve('playwright-core')"], cwd=CHECK.parent, capture_output=True, check=False
    )
    if found.returncode != 0:
        return "npm package playwright-core is not installed (make setup installs it from package-lock.json)"
    return None


@pytest.fixture
def artifacts(tmp_path):
    """Where the page, its JSON and the screenshot go: reports/browser/ under make test-browser."""
    if REQUIRED:
        folder = ROOT / "reports" / "browser"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path


def test_report_page_shows_the_json_reports_numbers_in_drawn_charts(kpi_workload, artifacts, tmp_path):
    reason = _missing()
    if reason is not None:
        if REQUIRED:
            pytest.fail(f"make test-browser needs a browser: {reason}")
        pytest.skip(reason)
    w = kpi_workload
    manifest = tmp_path / "manifest.json"
    w.suite.deployment.save(manifest)
    page, report, screenshot = (
        artifacts / "kpi-report.html",
        artifacts / "kpi-report.json",
        artifacts / "kpi-report.png",
    )
    result = CliRunner().invoke(
        cli,
        [
            *("--rpc", web3.provider.endpoint_uri, "--manifest", str(manifest), "report"),
            *(
                "--from-block",
                str(w.start_block),
                "--to-block",
                str(w.end_block),
                "--html",
                str(page),
                "--json",
            ),
        ],
        env={"MEDCHAIN_HOME": str(tmp_path)},
    )
    assert result.exit_code == 0, (result.output, result.exception)
    report.write_text(result.stdout)
    done = subprocess.run(
        ["node", str(CHECK), str(page), str(report), str(screenshot)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr or done.stdout
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["ok"]
    assert summary["rows"] == len(json.loads(result.stdout)["rows"])
    assert set(summary["charts"]) == {
        "chart-table1",
        "chart-durations",
        "chart-claims",
        "chart-access",
        "chart-value",
    }
    assert screenshot.stat().st_size > 10_000
