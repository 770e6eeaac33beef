"""The tabs' shared `withReports` under Node: each run's whole report from `report`.

`reports` lists summaries only; `static/common.js` fetches each listed run's
report from the `report` route. Run here with a stubbed `fetch`, so it is
checked without a browser (the browser tests drive the same code in Chromium).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from keras_bettermodels.tensorboard import _static

pytestmark = pytest.mark.backend_independent

NODE = shutil.which("node")

HARNESS = """
import { withReports } from %(module)s;
const requested = [];
globalThis.fetch = async (url) => {
  requested.push(url);
  const params = new URLSearchParams(url.split("?")[1]);
  if (params.get("run") === "gone") {
    return { ok: false, status: 400, statusText: "Bad Request",
             json: async () => ({ error: "Unknown `run`." }) };
  }
  return { ok: true, json: async () => ({
    run: params.get("run"), tag: params.get("tag"), step: Number(params.get("step")),
    report: { relative_error: 1e-9, run: params.get("run") }, error: null }) };
};
const listed = [
  { run: "a", tag: "t", step: 3, summary: { verdict: "great" }, error: null },
  { run: "big", tag: "t", step: 0, summary: null, error: "It is 50.0 MB of JSON" },
  { run: "gone", tag: "t", step: 1, summary: {}, error: null },
  ...Array.from({ length: 20 }, (_, i) => ({ run: `r${i}`, tag: "t", step: i,
                                            summary: {}, error: null })),
];
const entries = await withReports(listed);
console.log(JSON.stringify({ entries, requested }));
"""


@pytest.mark.skipif(NODE is None, reason="Node.js is not installed")
def test_with_reports_fetches_each_listed_report_and_keeps_errors(tmp_path):
    module = Path(_static.STATIC_ROOT, "common.js").as_uri()
    harness = tmp_path / "harness.mjs"
    harness.write_text(HARNESS % {"module": json.dumps(module)})
    result = subprocess.run(
        [NODE, str(harness)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    by_run = {entry["run"]: entry for entry in out["entries"]}
    assert [entry["run"] for entry in out["entries"]][:3] == ["a", "big", "gone"]
    assert by_run["a"]["report"] == {"relative_error": 1e-9, "run": "a"}
    assert by_run["a"]["summary"] == {"verdict": "great"}  # the listing's fields stay
    # A listed error is shown as it is: its report is not fetched.
    assert by_run["big"]["report"] is None
    assert by_run["big"]["error"] == "It is 50.0 MB of JSON"
    assert by_run["gone"]["report"] is None
    assert by_run["gone"]["error"] == ("Could not load the report: 400: Unknown `run`.")
    assert all(by_run[f"r{i}"]["report"]["run"] == f"r{i}" for i in range(20))
    assert len(out["requested"]) == 22  # one per listed run without an error
    assert all(url.startswith("report?") for url in out["requested"])
    assert "report?run=a&tag=t&step=3" in out["requested"]
