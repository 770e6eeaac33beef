"""The Input timing tab's scales and first-epoch parts, under Node.

`static/input_timing/index.js` exports its pure helpers; they run here without
a browser (the browser tests draw the same charts in Chromium). The module is
laid out as TensorBoard serves it: `index.js` beside `static/common.js`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from keras_bettermodels.tensorboard import _static

pytestmark = [
    pytest.mark.backend_independent,
    pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed"),
]

HARNESS = """
import { epochScale, firstEpochParts, sharedScales, LOG_RATIO } from "./index.js";
// The issue's cached run: a 1.11 s first epoch, 835 ms of it compiling.
const cached = { cached: true, first_epoch_time: 1.11, compile_time: 0.835,
                 steady_epoch_time: 0.012, epoch_times: [1.11, 0.012, 0.011] };
const uncached = { cached: false, first_epoch_time: 1.2, compile_time: 0.83,
                   steady_epoch_time: 0.36, epoch_times: [1.2, 0.36, 0.37] };
const scales = sharedScales([cached, uncached, null, "odd"]);
const parts = firstEpochParts(cached);
const first = scales.first;
console.log(JSON.stringify({
  logRatio: LOG_RATIO,
  parts,
  kinds: { epochs: scales.epochs.kind, first: first.kind },
  firstTicks: first.ticks,
  // Lengths on the first-epoch scale, as fractions of the plot.
  compileShare: first.fraction(parts[0].seconds) / first.fraction(1.11),
  cachedAlone: sharedScales([cached]).epochs.kind,
  uncachedAlone: sharedScales([uncached]).epochs.kind,
  linearOfASize: epochScale([0.3, 0.5, 2.9]).kind,
  logTicks: epochScale([0.011, 1.2]).ticks,
  reused: firstEpochParts({ ...cached, cache_reused: true }).map((p) => p.part),
  clamped: firstEpochParts({ first_epoch_time: 1.0, compile_time: 3.0 }),
  noCompile: firstEpochParts({ first_epoch_time: 1.0, compile_time: null }),
  fromTimes: firstEpochParts({ epoch_times: [2.0, 1.0], compile_time: 0.5 }),
  empty: [firstEpochParts({}), firstEpochParts({ epoch_times: ["NaN"] })],
}));
"""


@pytest.fixture(scope="module")
def helpers(tmp_path_factory) -> dict:
    served = tmp_path_factory.mktemp("input_timing")
    static = Path(_static.STATIC_ROOT)
    shutil.copy(static / "input_timing" / "index.js", served / "index.js")
    (served / "static").mkdir()
    shutil.copy(static / "common.js", served / "static" / "common.js")
    (served / "harness.mjs").write_text(HARNESS)
    result = subprocess.run(
        [shutil.which("node") or "node", str(served / "harness.mjs")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_first_epoch_is_stacked_on_a_linear_scale_shared_by_the_runs(helpers):
    assert helpers["kinds"]["first"] == "linear"
    assert helpers["firstTicks"] == [0, 1, 2]  # 0 to the longest first epoch, rounded
    assert helpers["parts"] == [
        {"part": "compile", "seconds": 0.835},
        {"part": "fill", "seconds": pytest.approx(1.11 - 0.835)},
    ]
    # 835 ms of 1.11 s: three quarters of the bar, the cache fill a quarter.
    assert helpers["compileShare"] == pytest.approx(0.835 / 1.11)


def test_the_epoch_scale_is_one_for_all_runs_and_log_only_past_tenfold(helpers):
    assert helpers["logRatio"] == 10
    # 11 ms beside 1.2 s: logarithmic, for both runs alike.
    assert helpers["kinds"]["epochs"] == "log"
    assert helpers["cachedAlone"] == "log"
    assert helpers["uncachedAlone"] == "linear"
    assert helpers["linearOfASize"] == "linear"
    # Whole decades, from one at least 3x below the shortest epoch.
    assert helpers["logTicks"] == pytest.approx([0.001, 0.01, 0.1, 1, 10])


def test_first_epoch_parts_name_what_the_rest_was(helpers):
    assert helpers["reused"] == ["compile", "rest"]  # a reused file cache fills nothing
    # A compile time longer than the epoch is drawn as the whole epoch.
    assert helpers["clamped"] == [{"part": "compile", "seconds": 1.0}]
    assert helpers["noCompile"] == [{"part": "rest", "seconds": 1.0}]
    assert helpers["fromTimes"] == [
        {"part": "compile", "seconds": 0.5},
        {"part": "rest", "seconds": 1.5},
    ]
    assert helpers["empty"] == [[], []]
