"""End to end: real `tensorboard` processes, headless Debian Chromium, Playwright.

Logs come from real `fit` runs with the package's callbacks (see `_logs.py`).
Three TensorBoard processes start together: the logs with `--load_fast=false
--reload_interval 1`, the same logs with the default (fast) loader, and an
empty log directory (fast loader). Each tab is opened in Chromium, its tables,
verdicts and bars are checked against the data read back from the event files,
and screenshots go to `tests/browser/artifacts/` (ignored by git, kept by CI).
"""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path
from typing import Any

import pytest

from keras_bettermodels.tensorboard import metadata
from tests.browser import _logs
from tests.browser._server import PLUGINS, TensorBoard

pytestmark = [pytest.mark.browser, pytest.mark.backend_independent]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).with_name("artifacts")
GC, TIMING = metadata.GRADIENT_CHECK_PLUGIN, metadata.INPUT_TIMING_PLUGIN
XSS = _logs.XSS
DASH = "\u2014"
READY_TIMEOUT = 60.0
RENDER_TIMEOUT_MS = 30_000

if not os.path.exists(CHROMIUM):
    pytest.skip(
        f"Debian's chromium is not installed at {CHROMIUM}: `make browser-deps` "
        "(as root) installs it",
        allow_module_level=True,
    )
if importlib.util.find_spec("playwright") is None:
    pytest.skip(
        "the Python package `playwright` is not installed: "
        "`pip install -e '.[dev]'` (no browser download is needed)",
        allow_module_level=True,
    )


def _serves_every_run(expected: dict[str, set[str]]):
    """Whether a TensorBoard lists a report's summary (or its error) for every run."""

    def ready(board: TensorBoard) -> bool:
        for name, runs in expected.items():
            served = board.reports(name)
            for run in runs:
                entry = served.get(run)
                if entry is None or (entry["summary"] is None and not entry["error"]):
                    return False
        return True

    return ready


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Three TensorBoard processes and the logs they serve.

    The processes start first and boot while the fits write the logs; they
    pick the runs up as they appear (`--reload_interval 1`, and the fast
    loader's own polling). All are stopped at the end, whatever happens.
    """
    base = tmp_path_factory.mktemp("browser")
    root, empty = base / "logs", base / "empty"
    root.mkdir()
    empty.mkdir()
    boards: dict[str, TensorBoard] = {}
    try:
        boards["slow"] = TensorBoard(
            root, "--load_fast=false", "--reload_interval", "1"
        )
        boards["fast"] = TensorBoard(root)
        boards["empty"] = TensorBoard(empty)
        written = _logs.write_logs(root)
        checks, timing = written["gradient_check"], written["timing"]
        ready = _serves_every_run({GC: set(checks), TIMING: set(timing)})
        boards["slow"].wait_until(ready, READY_TIMEOUT)
        boards["fast"].wait_until(ready, READY_TIMEOUT)
        boards["empty"].wait_until(lambda board: board.reports(GC) == {}, READY_TIMEOUT)
        yield {**boards, "gradient_check": checks, "timing": timing}
    finally:
        for board in boards.values():
            board.terminate()
        for board in boards.values():
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


class Page:
    """A Playwright page on one TensorBoard; records dialogs, errors, requests.

    TensorBoard is a single-page app: the page loads once, and opening a tab
    changes the URL's fragment only, which keeps the suite fast.
    """

    def __init__(
        self, browser, board: TensorBoard, color_scheme: str = "light"
    ) -> None:
        self.board = board
        self.context = browser.new_context(
            viewport={"width": 1400, "height": 1000}, color_scheme=color_scheme
        )
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.requests: list[tuple[str, str]] = []

        def on_dialog(dialog):
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        self.page.on("dialog", on_dialog)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda r: self.requests.append((r.frame.url, r.url)))

    def open_tab(self, plugin_name: str):
        """Opens `plugin_name`'s tab and returns its iframe once rendered."""
        self.page.goto(f"{self.board.url}/#{plugin_name}")
        return self.frame(plugin_name)

    def frame(self, plugin_name: str):
        frame = self.page.frame_locator(f'iframe[src*="name={plugin_name}"]')
        frame.locator("body[data-rendered=true]").wait_for(
            state="attached", timeout=RENDER_TIMEOUT_MS
        )
        return frame

    def screenshot(self, name: str) -> None:
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


def _page(browser, board: TensorBoard, color_scheme: str = "light"):
    opened = Page(browser, board, color_scheme)
    try:
        yield opened
        assert opened.dialogs == [], "a dialog opened: a script from the data ran"
        assert opened.errors == [], "the page raised JavaScript errors"
    finally:
        opened.close()


@pytest.fixture(scope="module")
def light(browser, site):
    yield from _page(browser, site["slow"])


@pytest.fixture(scope="module")
def dark(browser, site):
    yield from _page(browser, site["slow"], "dark")


@pytest.fixture(scope="module")
def fast(browser, site):
    yield from _page(browser, site["fast"])


@pytest.fixture(scope="module")
def empty(browser, site):
    yield from _page(browser, site["empty"])


CARDS_JS = """cards => cards.map(card => ({
  run: card.dataset.run,
  title: card.querySelector("h2.run").textContent,
  error: card.querySelector(".message.error")?.textContent ?? null,
  verdict: card.querySelector("[data-field=verdict]")?.textContent ?? null,
  relativeError: card.querySelector("[data-field=relative_error]")?.textContent ?? null,
  setBy: card.querySelector("[data-field=set_by]")?.textContent ?? null,
  steps: [...card.querySelectorAll("select option")].map(o => o.value),
  rows: [...card.querySelectorAll("table.variables tbody tr")].map(tr => ({
    name: [...tr.cells[0].childNodes]
      .filter(node => !node.classList?.contains("kink"))
      .map(node => node.textContent).join(""),
    cells: [...tr.cells].map(td => td.textContent),
    band: tr.dataset.band,
    kink: tr.dataset.kink === "true",
  })),
  bars: [...card.querySelectorAll("rect.bar")].map(bar => ({
    seconds: Number(bar.dataset.seconds),
    height: Number(bar.getAttribute("height")),
    fill: bar.classList.contains("fill"),
    recompiled: bar.dataset.recompiled === "true",
  })),
  scale: card.querySelector("svg.chart.epochs")?.dataset.scale ?? null,
  ticks: [...card.querySelectorAll("svg.epochs text.tick")].map(t => t.textContent),
  titles: Object.fromEntries([...card.querySelectorAll("svg.chart")].map(svg => [
    svg.classList.contains("epochs") ? "epochs" : "first",
    {
      scale: svg.dataset.scale,
      x: svg.querySelector("text.axis-title[data-axis=x]")?.textContent ?? null,
      y: svg.querySelector("text.axis-title[data-axis=y]")?.textContent ?? null,
    },
  ])),
  // Stacked parts (rect.segment) drawn on a log scale: there must be none.
  segmentsOnLog: card.querySelectorAll("svg[data-scale=log] rect.segment").length,
  firstParts: [...card.querySelectorAll("svg.first-epoch rect.segment")].map(r => ({
    part: r.dataset.part,
    seconds: Number(r.dataset.seconds),
    width: Number(r.getAttribute("width")),
  })),
  recompiledText:
    card.querySelector("[data-field=recompiled_epochs]")?.textContent ?? null,
  compile: card.querySelector("rect.compile")?.dataset.seconds ?? null,
  speedup: card.querySelector("[data-field=speedup]")?.textContent ?? null,
  cached: card.querySelector("[data-field=cached]")?.textContent ?? null,
  advice: [...card.querySelectorAll("ul.advice li")].map(li => li.textContent),
}))"""


def _cards(frame) -> dict[str, dict[str, Any]]:
    cards = frame.locator("section.card").evaluate_all(CARDS_JS)
    return {card["run"]: card for card in cards}


def _close(text: str, value: float, digits: int = 3) -> bool:
    """Whether `text` shows `value` to about `digits` significant digits."""
    shown = float(text.replace("\u00d7", "").replace(",", ""))
    return math.isclose(shown, value, rel_tol=10 ** (1 - digits))


def _check_gradient_card(card: dict[str, Any], report: dict[str, Any]) -> None:
    assert card["verdict"] == report["verdict"]
    assert _close(card["relativeError"], report["relative_error"])
    # The headline names the row whose error it is: the band is the verdict.
    assert card["setBy"] == (report.get("set_by") or "\u2014")
    rows = [*report["variables"]]
    if report.get("all_variables"):
        rows.append(report["all_variables"])
    assert [row["name"] for row in card["rows"]] == [v["name"] for v in rows]
    for row, variable in zip(card["rows"], rows, strict=True):
        assert row["band"] == variable["verdict"]
        assert row["cells"][-1] == variable["verdict"]
        assert _close(row["cells"][3], variable["relative_error"])
        kinked = variable["name"] in report["kinks"] or variable.get("kinks", 0) > 0
        assert row["kink"] == kinked


def test_gradient_check_tab_shows_the_reference_table(light, site):
    frame = light.open_tab(GC)
    legend = frame.locator("table.legend tbody tr")
    assert legend.locator("td:first-child").all_text_contents() == [
        "\u2264 1e-7",
        "1e-7 \u2013 1e-5",
        "~ 1e-5",
        "\u2265 1e-3",
    ]
    assert legend.locator("td:nth-child(2)").all_text_contents() == [
        "the gradient is right",
        "fine for most models",
        "double-check the components",
        "there is probably a bug",
    ]
    cards, checks = _cards(frame), site["gradient_check"]
    assert set(cards) == set(checks)
    for run, reports in checks.items():
        if run != _logs.SPARSE:
            _check_gradient_card(cards[run], reports[max(reports)])
        steps = [str(step) for step in reports] if len(reports) > 1 else []
        assert cards[run]["steps"] == steps
    # The real fits: a correct model passes, the planted bug is located.
    assert cards["mlp"]["verdict"] == "great"
    assert cards["buggy"]["verdict"] == "bug"
    buggy = {row["name"]: row["band"] for row in cards["buggy"]["rows"]}
    located = [
        band for name, band in buggy.items() if "stop_gradient_penalty/k" in name
    ]
    assert located == ["bug"]
    assert {band for name, band in buggy.items() if "/dense" in name} == {"great"}
    assert [row["kink"] for row in cards["kinked"]["rows"]] == [
        False,
        False,
        True,
        False,
    ]
    light.screenshot("gradient_check")
    assert light.dialogs == [] and light.errors == []


def _select_step(frame, run: str, step: int) -> None:
    card = frame.locator(f'section.card[data-run="{run}"]')
    card.locator("select").select_option(str(step))
    card.locator("[data-field=step]").filter(has_text=str(step)).wait_for()


def test_the_step_selector_shows_an_earlier_check(light, site):
    frame = light.open_tab(GC)
    checks = site["gradient_check"]["mlp"]
    assert sorted(checks) == [0, 1, 2]
    _select_step(frame, "mlp", 0)
    _check_gradient_card(_cards(frame)["mlp"], checks[0])
    _select_step(frame, "mlp", 2)
    _check_gradient_card(_cards(frame)["mlp"], checks[2])


def test_input_timing_tab_shows_bars_speedups_and_advice(light, site):
    frame = light.open_tab(TIMING)
    cards, timing = _cards(frame), site["timing"]
    assert set(cards) == set(timing)
    for run in ("cached", "uncached"):
        report, card = timing[run], cards[run]
        times = [epoch["time"] for epoch in report["epochs"]]
        assert [bar["seconds"] for bar in card["bars"]] == pytest.approx(times)
        heights = [bar["height"] for bar in card["bars"]]
        assert min(heights) > 0
        # The first epoch's parts, stacked on a linear scale: each part's
        # length is its share of the epoch; a steady epoch below, to scale.
        parts = {part["part"]: part for part in card["firstParts"]}
        # A real run's compile estimate can be 0 on a loaded machine: no part.
        compiled = bool(report["compile_time"] and report["compile_time"] > 0)
        assert set(parts) == {
            *(["compile"] if compiled else []),
            "fill" if report["cached"] else "rest",
            "steady",
        }
        first = report["first_epoch_time"]
        widths = sum(part["width"] for name, part in parts.items() if name != "steady")
        if compiled:
            assert parts["compile"]["width"] / widths == pytest.approx(
                report["compile_time"] / first, abs=0.01
            )
        assert parts["steady"]["width"] / widths == pytest.approx(
            report["steady_epoch_time"] / first, abs=0.01
        )
        assert _close(card["speedup"], report["speedup"])
        if compiled:
            assert float(card["compile"]) == pytest.approx(report["compile_time"])
        else:  # no estimate, or an estimate of 0: no compile bar to read
            assert card["compile"] is None
        assert card["advice"] == report["advice"]
        fills = [bool(report["cached"]) and i == 0 for i in range(len(times))]
        assert [bar["fill"] for bar in card["bars"]] == fills
    assert cards["cached"]["cached"] == "cached (memory)"
    assert cards["uncached"]["cached"] == "not cached"
    # All runs on one scale: a longer epoch never has a shorter bar, in any card.
    bars = [bar for card in cards.values() for bar in card["bars"]]
    bars = [bar for bar in bars if math.isfinite(bar["seconds"]) and bar["seconds"]]
    by_time = sorted(bars, key=lambda bar: bar["seconds"])
    assert [bar["height"] for bar in by_time] == sorted(bar["height"] for bar in bars)
    # A gross effect of the real fits: the cached pipeline's epochs drop.
    speedups = {run: timing[run]["speedup"] for run in ("cached", "uncached")}
    assert speedups["cached"] > 2 * speedups["uncached"], timing
    rows = frame.locator("table.comparison tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.run)"
    )
    assert rows == sorted(timing)
    light.screenshot("input_timing")


def test_a_recompiled_epoch_is_marked_and_40_ms_epochs_stay_visible(light, site):
    card = _cards(light.open_tab(TIMING))[_logs.RECOMPILED]
    report = site["timing"][_logs.RECOMPILED]
    assert report["recompiled_epochs"] == [1]
    assert [bar["recompiled"] for bar in card["bars"]] == [
        False,
        True,
        False,
        False,
        False,
    ]
    assert card["recompiledText"].startswith("epoch 2 (+1.16")
    # 3 s beside 40 ms: a log scale, on which the 40 ms bars are a fifth of
    # the plot or more (on a shared linear 0-5 s axis they were under 1 %).
    assert card["scale"] == "log"
    heights = [bar["height"] for bar in card["bars"]]
    assert min(heights[2:]) > max(heights) / 5
    assert light.errors == []


def test_timing_axes_are_titled_in_seconds_and_nothing_stacks_on_a_log_scale(
    light, site
):
    cards = {
        run: card
        for run, card in _cards(light.open_tab(TIMING)).items()
        if card["error"] is None
    }
    assert cards
    # One scale for every run: the same kind and the same ticks in each card.
    assert {card["scale"] for card in cards.values()} == {"log"}  # 3 s beside ms
    assert len({tuple(card["ticks"]) for card in cards.values()}) == 1
    for card in cards.values():
        assert card["titles"]["epochs"] == {
            "scale": "log",
            "x": "epoch",
            "y": "seconds (log scale)",
        }
        # The stacked first epoch is always linear, from 0.
        assert card["titles"]["first"] == {"scale": "linear", "x": "seconds", "y": None}
        assert card["segmentsOnLog"] == 0
    assert light.errors == []


def test_a_newer_content_version_shows_a_clear_message(light):
    error = _cards(light.open_tab(TIMING))["newer"]["error"]
    assert f"version={metadata.PROTOCOL_VERSION + 1}" in error
    assert "Upgrade keras-bettermodels" in error


def test_missing_or_odd_fields_show_as_a_dash(light):
    sparse = _cards(light.open_tab(GC))[_logs.SPARSE]
    assert sparse["error"] is None
    assert (sparse["verdict"], sparse["relativeError"]) == ("great", DASH)
    assert sparse["rows"] == []
    card = light.page.frame_locator(f'iframe[src*="name={GC}"]').locator(
        f'section.card[data-run="{_logs.SPARSE}"]'
    )
    assert "This report lists no variables." in card.inner_text()
    sparse = _cards(light.open_tab(TIMING))[_logs.SPARSE]
    assert sparse["error"] is None
    assert (sparse["speedup"], sparse["cached"]) == (DASH, "not inspected")
    assert len(sparse["bars"]) == 2 and sparse["compile"] is None
    assert sparse["advice"] == ["one"]
    assert light.errors == []


@pytest.mark.parametrize("plugin_name", PLUGINS)
def test_html_in_names_shows_as_text_and_runs_no_script(light, plugin_name):
    frame = light.open_tab(plugin_name)
    run = XSS if plugin_name == GC else f"timing {XSS}"
    card = _cards(frame)[run]
    assert card["title"] == run
    if plugin_name == GC:
        assert card["rows"][0]["name"] == f"{XSS}/kernel"
    else:
        assert card["advice"] == [XSS]
    assert frame.locator("img").count() == 0
    assert frame.get_by_text(XSS, exact=True).count() >= 1
    assert light.dialogs == [] and light.errors == []


@pytest.mark.parametrize("plugin_name", PLUGINS)
def test_tabs_request_only_their_own_routes(light, plugin_name):
    frame = light.open_tab(plugin_name)
    if plugin_name == GC:  # the step selector fetches too
        _select_step(frame, "mlp", 0)
        _select_step(frame, "mlp", 2)
    base = f"{light.board.url}/data/plugin/{plugin_name}/"
    entry = f"{light.board.url}/data/plugin_entry.html?name={plugin_name}"
    own = [url for frame_url, url in light.requests if frame_url == entry]
    assert any(url.startswith(base + "reports") for url in own)
    assert all(url == entry or url.startswith(base) for url in own), own


def test_early_stopping_and_loss_scale_show_in_the_scalars_tab(light):
    light.page.goto(f"{light.board.url}/#scalars")
    tags = ("early_stopping/GL", "early_stopping/P_k", "mixed_precision/loss_scale")
    # The dashboard draws only the cards in view: filter the tags first.
    light.page.locator("tf-tag-filterer input").fill("early_stopping|loss_scale")
    for tag in tags:
        light.page.get_by_text(tag, exact=True).first.wait_for(
            timeout=RENDER_TIMEOUT_MS
        )
    light.screenshot("scalars")


@pytest.mark.parametrize("plugin_name", PLUGINS)
def test_dark_mode_is_readable(dark, plugin_name):
    frame = dark.open_tab(plugin_name)
    assert frame.locator("html").get_attribute("data-theme") == "dark"
    contrasts = frame.locator("main").evaluate(CONTRAST_JS)
    assert contrasts["background"] < 0.1  # a dark page
    assert min(contrasts["ratios"]) >= 4.5, contrasts  # WCAG AA for text
    dark.screenshot(f"{plugin_name.split('_', 1)[-1]}_dark")


CONTRAST_JS = """main => {
  const rgb = (text) => text.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const color = getComputedStyle(el).backgroundColor;
      if (color !== "rgba(0, 0, 0, 0)" && color !== "transparent") return rgb(color);
    }
    return [255, 255, 255];
  };
  const ratios = [];
  const selector = "h1, h2, td, th, .band, .value, .label, li, .message, dt, dd";
  for (const el of main.querySelectorAll(selector)) {
    if (!el.textContent.trim()) continue;
    const a = lum(rgb(getComputedStyle(el).color));
    const b = lum(background(el));
    ratios.push((Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05));
  }
  return { background: lum(background(main)), ratios };
}"""


def test_the_default_fast_loader_serves_both_tabs(fast, site):
    for plugin_name, runs in (
        (GC, set(site["gradient_check"])),
        (TIMING, set(site["timing"])),
    ):
        cards = _cards(fast.open_tab(plugin_name))
        assert set(cards) == runs
        fast.screenshot(f"{plugin_name.split('_', 1)[-1]}_fast_loader")
    mlp = _cards(fast.open_tab(GC))["mlp"]
    _check_gradient_card(mlp, site["gradient_check"]["mlp"][2])


@pytest.mark.parametrize(
    ("plugin_name", "words"),
    [(GC, "No gradient-check reports"), (TIMING, "No timing reports")],
)
def test_an_empty_log_dir_shows_a_message(empty, plugin_name, words):
    frame = empty.open_tab(plugin_name)
    frame.get_by_text(words).wait_for()
    assert frame.locator("section.card").count() == 0
