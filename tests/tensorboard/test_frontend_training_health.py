"""The Training health tab's pure helpers, under Node.

`static/training_health/index.js` exports how it reads a report (steps,
layers, the table at a step, the series behind the sparklines) and formats
it; they run here without a browser, on well-formed and hostile documents
(the browser test draws the same report in Chromium). The module is laid out
as TensorBoard serves it: `index.js` beside `static/common.js`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from keras_bettermodels.tensorboard import _static
from tests.tensorboard import _reports

pytestmark = [
    pytest.mark.backend_independent,
    pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed"),
]

HARNESS = """
import {
  bandOf, formatStat, layersOf, seriesOf, sparkline, statisticsOf, stepsOf, tableAt,
  SPARK_POINTS, STATISTICS,
} from "./index.js";
const report = %(report)s;
// TensorBoard sends NaN and infinities as strings; user data can be anything.
const hostile = {
  statistics: "not a list",
  layers: [{"a": 1}, "x", null],
  steps: [4, "5", 2.5, "NaN", 0, 4],
  rows: [null, 7, { step: 0, layer: "x", grad_norm: "Infinity" },
         { step: "oops", layer: "y" },
         { step: 4, layer: "only_in_rows", grad_norm: "NaN" },
         { step: 4 }],
};
const long = Array.from({ length: 1000 }, (_, i) => i);
console.log(JSON.stringify({
  statistics: STATISTICS,
  sparkPoints: SPARK_POINTS,
  steps: stepsOf(report),
  layers: layersOf(report),
  latest: tableAt(report, 8)["net/dead"],
  gradSeries: seriesOf(report)["net/first"].grad_norm,
  updateSeries: seriesOf(report)["net/last"].update_ratio,
  hostile: {
    statistics: statisticsOf(hostile),
    steps: stepsOf(hostile),
    layers: layersOf(hostile),
    table: Object.keys(tableAt(hostile, 4)),
    series: seriesOf(hostile).x.grad_norm,
    none: [stepsOf(null), layersOf(undefined), Object.keys(tableAt("text", 0))],
  },
  formats: [
    formatStat("dead_fraction", 1), formatStat("dead_fraction", 0.125),
    formatStat("gradient_underflow", 0), formatStat("grad_norm", 0.000012345),
    formatStat("activation_abs_max", "Infinity"), formatStat("grad_norm", "NaN"),
    formatStat("grad_norm", null), formatStat("weight_norm", "12"),
    formatStat("dead_fraction", "Infinity"),
  ],
  bands: ["dead-units", "float16-overflow", "exploding-gradients", "loss-spike",
          "<b>new</b>", "__proto__"].map(bandOf),
  spark: sparkline([1, 2, null, 3, "Infinity", 5], 50, 10),
  flat: sparkline([2, 2, 2], 50, 10).segments,
  single: sparkline([7], 50, 10).segments,
  longPoints: sparkline(long).segments.flat().length,
  longLast: sparkline(long, 100, 10).segments.flat().at(-1),
}));
"""


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> dict:
    served = tmp_path_factory.mktemp("training_health")
    static = Path(_static.STATIC_ROOT)
    shutil.copy(static / "training_health" / "index.js", served / "index.js")
    (served / "static").mkdir()
    shutil.copy(static / "common.js", served / "static" / "common.js")
    report = json.dumps(_reports.health_report())
    (served / "harness.mjs").write_text(HARNESS % {"report": report})
    result = subprocess.run(
        [shutil.which("node") or "node", str(served / "harness.mjs")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_steps_layers_and_the_table_at_a_step_follow_the_report(out):
    assert out["statistics"] == list(_reports.HEALTH_STATISTICS)
    assert out["steps"] == [0, 4, 8]
    assert out["layers"] == ["net/first", "net/dead", "net/last"]
    dead = out["latest"]
    assert (dead["step"], dead["dead_fraction"], dead["grad_norm"]) == (8, 1.0, 0.0)
    assert out["gradSeries"] == pytest.approx([0.5, 0.7, 0.9])
    assert out["updateSeries"] == [
        None,
        pytest.approx(3 * 1.4e-3),
        pytest.approx(3 * 1.8e-3),
    ]


def test_hostile_documents_are_read_without_throwing(out):
    hostile = out["hostile"]
    assert hostile["statistics"] == list(_reports.HEALTH_STATISTICS)
    assert hostile["steps"] == [0, 4]  # integers only, deduplicated, sorted
    # Layers are shown as text; a layer only the rows name is appended.
    assert hostile["layers"] == ['{"a":1}', "x", "\u2014", "only_in_rows"]
    assert hostile["table"] == ["only_in_rows"]
    # "Infinity" at step 0 is read as Infinity (JSON.stringify writes null).
    assert hostile["series"] == [None, None]
    assert hostile["none"] == [[], [], []]


def test_statistics_are_formatted_shares_in_percent(out):
    assert out["formats"] == [
        "100%",
        "12.5%",
        "0%",
        "1.23e-5",
        "Infinity",
        "NaN",
        "\u2014",
        "\u2014",  # a number as a string is not a number
        "Infinity",
    ]
    assert out["bands"] == ["check", "bug", "bug", "check", "none", "none"]


def test_sparklines_break_at_gaps_flag_non_finite_values_and_stay_small(out):
    spark = out["spark"]
    assert [len(segment) for segment in spark["segments"]] == [2, 1, 1]
    assert spark["flags"] == [4]  # Infinity: a mark, not a point off the chart
    assert (spark["low"], spark["high"]) == (1, 5)
    ys = [y for segment in spark["segments"] for _, y in segment]
    assert min(ys) == 0 and max(ys) == 10  # 5 at the top, 1 at the bottom
    assert out["flat"] == [[[0, 5], [25, 5], [50, 5]]]
    assert out["single"] == [[[25, 5]]]
    assert out["longPoints"] == out["sparkPoints"]
    assert out["longLast"] == [100, 0]
