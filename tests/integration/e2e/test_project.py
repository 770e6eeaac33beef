"""End to end, as a user combines the parts: a fit, a search, its retrain, TensorBoard.

`_project.py` runs in one process per backend (TensorFlow and JAX, side by
side): every callback with a `log_dir` in one `fit`, then the same callbacks in
`RandomSearch.search` and the retrain. A real TensorBoard then serves the logs
and headless Chromium opens both tabs: each lists the fit, one run per trial and
the retrain, for each backend.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keras_bettermodels.tensorboard import metadata
from tests.browser._server import TensorBoard
from tests.browser.test_tensorboard_plugins import CHROMIUM, CHROMIUM_FLAGS

pytestmark = [pytest.mark.browser, pytest.mark.backend_independent]

BACKENDS = ("tensorflow", "jax")
TABS = {
    "gradient_check": metadata.GRADIENT_CHECK_PLUGIN,
    "input_timing": metadata.INPUT_TIMING_PLUGIN,
}
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    out = tmp_path_factory.mktemp("project")
    processes = {
        backend: subprocess.Popen(
            [sys.executable, "-m", "tests.integration.e2e._project", str(out)],
            cwd=ROOT,
            env={**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for backend in BACKENDS
    }
    for backend, process in processes.items():
        output, _ = process.communicate(timeout=900)
        assert process.returncode == 0, f"{backend} project failed:\n{output[-4000:]}"
    return out, {b: json.loads((out / f"{b}.json").read_text()) for b in BACKENDS}


def test_each_trial_writes_its_own_folder(project) -> None:
    _, expected = project
    for backend, found in expected.items():
        assert found["retrained"], backend
        trials = found["trials"]
        for name, listing in found["user_dirs"].items():
            # Nothing but one folder per trial (and the retrain's) in the user's
            # dir, and at most the search's HParams experiment summary.
            retrain = [] if name == "early_stopping" else ["retrain"]
            events = [n for n in listing if n.startswith("events.out.tfevents.")]
            folders = [n for n in listing if n not in events]
            assert folders == sorted([*trials, *retrain]), (backend, name, listing)
            assert len(events) <= 1, (backend, name, listing)


def test_tensorboard_tabs_list_one_run_per_trial_and_the_retrain(project) -> None:
    from playwright.sync_api import sync_playwright

    out, expected = project
    runs = {
        tab: sorted(run for found in expected.values() for run in found["runs"][tab])
        for tab in TABS
    }
    board = TensorBoard(out)
    try:

        def served(board: TensorBoard) -> bool:
            return all(
                sorted(board.reports(plugin)) == runs[tab]
                for tab, plugin in TABS.items()
            )

        board.wait_until(served, 90.0)
        for plugin in TABS.values():
            listing = board.reports(plugin)
            assert all(entry["error"] is None for entry in listing.values()), listing
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_FLAGS
            )
            try:
                page = browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                for tab, plugin in TABS.items():
                    page.goto(f"{board.url}/#{plugin}")
                    frame = page.frame_locator(f'iframe[src*="name={plugin}"]')
                    frame.locator("body[data-rendered=true]").wait_for(
                        state="attached", timeout=60_000
                    )
                    shown = frame.locator("section.card").evaluate_all(
                        "cards => cards.map(card => card.dataset.run)"
                    )
                    assert sorted(shown) == runs[tab], tab
                assert errors == []
            finally:
                browser.close()
    finally:
        board.stop()
