"""End to end: the Training health tab in a real `tensorboard` and headless Chromium.

One real `fit` with `TrainingHealth(log_dir=...)` on a model with a planted
dead layer (a ReLU whose bias of -10 keeps it at 0), and a report written with
`summary.write_json` whose run and layer names are HTML and whose statistics
are infinite. TensorBoard (`--load_fast=false`) serves them; the tab's
findings, table and sparklines are checked against the report read back from
the event files, in light and dark mode. Screenshots go to
`tests/browser/artifacts/`.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from keras_bettermodels.tensorboard import metadata, summary
from tests.browser import _logs
from tests.browser._server import TensorBoard
from tests.browser.test_tensorboard_plugins import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_FLAGS,
    CONTRAST_JS,
    READY_TIMEOUT,
    _page,
)
from tests.tensorboard import _reports

pytestmark = [pytest.mark.browser, pytest.mark.backend_independent]

HEALTH = metadata.TRAINING_HEALTH_PLUGIN
XSS = _reports.XSS
HOSTILE_RUN = f"health {XSS}"


def _dead_units_fit(log_dir: Path) -> None:
    import keras
    import numpy as np

    from keras_bettermodels.callbacks import TrainingHealth

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(32, 8)).astype("float32")
    y = rng.integers(0, 3, 32).astype("int32")
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(8, activation="relu", name="first"),
            keras.layers.Dense(
                8,
                activation="relu",
                bias_initializer=keras.initializers.Constant(-10.0),
                name="dead",
            ),
            keras.layers.Dense(3, activation="softmax", name="last"),
        ],
        name="net",
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    health = TrainingHealth(x, y, every_n_steps=1, verbose=0, log_dir=log_dir)
    model.fit(
        x, y, batch_size=16, epochs=2, verbose=0, shuffle=False, callbacks=[health]
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A TensorBoard that boots while the fit writes its logs; stopped at the end."""
    root = tmp_path_factory.mktemp("health") / "logs"
    root.mkdir()
    board = TensorBoard(root, "--load_fast=false", "--reload_interval", "1")
    try:
        hostile = _reports.health_report((f"net/{XSS}", "net/out"), (0, 1), dead=None)
        hostile["rows"][2]["activation_abs_max"] = math.inf
        hostile["findings"][0]["message"] = XSS
        _reports.write_health(root / HOSTILE_RUN, 0, hostile)
        _dead_units_fit(root / "dead")
        summary.close_all()
        written = _logs.read_reports(root, HEALTH)
        reports = {run: steps[max(steps)] for run, steps in written.items()}

        def ready(served: TensorBoard) -> bool:
            entries = served.reports(HEALTH)
            return all(
                run in entries and entries[run]["step"] == max(written[run])
                for run in reports
            )

        board.wait_until(ready, READY_TIMEOUT)
        yield board, reports
    finally:
        board.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


CARD_JS = """card => ({
  title: card.querySelector("h2.run").textContent,
  findings: [...card.querySelectorAll("ul.findings li")].map(li => ({
    code: li.dataset.code, layer: li.dataset.layer ?? null,
    message: li.querySelector(".finding-message").textContent,
  })),
  steps: [...card.querySelectorAll("select.sampled-step option")]
    .map(o => Number(o.value)),
  step: Number(card.querySelector("table.health").dataset.step),
  heads: [...card.querySelectorAll("table.health th[data-stat]")]
    .map(th => th.dataset.stat),
  rows: [...card.querySelectorAll("table.health tbody tr")].map(tr => ({
    layer: tr.cells[0].textContent,
    params: tr.cells[1].textContent,
    flagged: tr.dataset.flagged === "true",
    cells: Object.fromEntries([...tr.querySelectorAll("td[data-stat]")].map(td => [
      td.dataset.stat,
      { text: td.querySelector(".value-text").textContent,
        flag: td.classList.contains("flag"),
        points: Number(td.querySelector("svg.spark")?.dataset.points ?? 0) },
    ])),
  })),
  spikes: card.querySelectorAll("svg.loss circle.spike").length,
  loss: card.querySelector("svg.loss") !== null,
})"""


def _card(frame, run: str) -> dict:
    return frame.locator(f'section.card[data-run="{run}"]').evaluate(CARD_JS)


def _percent(value: float) -> str:
    return "0%" if value == 0 else f"{float(f'{value * 100:.3g}'):g}%"


def _check_table(card: dict, report: dict, step: int) -> None:
    assert card["step"] == step
    assert card["heads"] == report["statistics"]
    assert [row["layer"] for row in card["rows"]] == report["layers"]
    rows = {row["layer"]: row for row in report["rows"] if row["step"] == step}
    for shown in card["rows"]:
        row = rows[shown["layer"]]
        assert shown["params"] == str(row["params"])
        for name in ("dead_fraction", "gradient_underflow"):
            assert shown["cells"][name]["text"] == _percent(row[name])
        for name in ("grad_norm", "weight_norm", "activation_abs_max"):
            text, value = shown["cells"][name]["text"], row[name]
            if value == 0:
                assert text == "0"
            else:
                assert math.isclose(float(text), value, rel_tol=1e-2), (name, text)
        points = shown["cells"]["weight_norm"]["points"]
        assert points == len(report["steps"])  # a sparkline over every sample


def test_findings_table_sparklines_and_step_selector(site, browser):
    board, reports = site
    report = reports["dead"]
    for opened in _page(browser, board):
        frame = opened.open_tab(HEALTH)
        card = _card(frame, "dead")
        assert ("dead-units", "net/dead") in {
            (finding["code"], finding["layer"]) for finding in card["findings"]
        }
        assert len(card["findings"]) == len(report["findings"])
        assert card["steps"] == report["steps"] and len(card["steps"]) >= 3
        _check_table(card, report, report["steps"][-1])  # the latest by default
        dead = next(row for row in card["rows"] if row["layer"] == "net/dead")
        assert dead["cells"]["dead_fraction"]["text"] == "100%"
        assert dead["flagged"] and dead["cells"]["dead_fraction"]["flag"]
        assert card["loss"]
        opened.page.screenshot(path=str(ARTIFACTS / "training_health.png"))
        first = report["steps"][0]
        section = frame.locator('section.card[data-run="dead"]')
        section.locator("select.sampled-step").select_option(str(first))
        section.locator(f'table.health[data-step="{first}"]').wait_for()
        _check_table(_card(frame, "dead"), report, first)

        hostile = _card(frame, HOSTILE_RUN)
        assert hostile["title"] == HOSTILE_RUN
        assert hostile["rows"][0]["layer"] == f"net/{XSS}"
        assert hostile["rows"][0]["cells"]["activation_abs_max"]["text"] == "Infinity"
        assert hostile["findings"][0]["message"] == XSS
        assert hostile["spikes"] == 1
        assert frame.locator("img").count() == 0
        assert opened.dialogs == [] and opened.errors == []


def test_dark_mode_is_readable(site, browser):
    board, _ = site
    for opened in _page(browser, board, "dark"):
        frame = opened.open_tab(HEALTH)
        assert frame.locator("html").get_attribute("data-theme") == "dark"
        contrasts = frame.locator("main").evaluate(CONTRAST_JS)
        assert contrasts["background"] < 0.1
        assert min(contrasts["ratios"]) >= 4.5, contrasts
        opened.screenshot("training_health_dark")
