"""Input timing's report types: dicts that round-trip and load old logs, a table."""

from __future__ import annotations

import dataclasses
import json

import pytest

from keras_bettermodels.timing import analysis
from keras_bettermodels.timing.analysis import summarize
from keras_bettermodels.timing.report import EpochTiming, TimingReport
from tests._imports import heavy_modules_after
from tests.timing._scripted import CACHED, pipeline_info, scripted_epochs

pytestmark = pytest.mark.backend_independent


class TestEpochTiming:
    def test_rates_are_per_second_of_training_or_none(self):
        epoch = EpochTiming(0, 2.0, 0.5, 10, 0.0, 0.1, 320)
        assert epoch.steps_per_second == 5.0
        assert epoch.samples_per_second == 160.0
        assert EpochTiming(0, 2.0, 0.5, 10, 0.0, 0.1).samples_per_second is None
        assert EpochTiming(0, 0.0, 0.5, 10, 0.0, 0.0).steps_per_second is None


class TestTimingReport:
    def _report(self, **changes) -> TimingReport:
        epochs = scripted_epochs([2.0, 0.2, 0.2], [0.9, 0.02, 0.02], samples=320)
        return summarize(
            epochs,
            batch_size=32,
            pipeline=pipeline_info(**CACHED),
            backend="tensorflow",
            **changes,
        )

    def test_to_dict_is_json_and_round_trips(self):
        report = self._report()
        document = json.loads(json.dumps(report.to_dict()))
        assert TimingReport.from_dict(document) == report
        assert document["pipeline"]["cache_position"] == "after map"
        assert document["epochs"][1]["samples_per_second"] == pytest.approx(1600.0)
        assert document["speedup"] == pytest.approx((2.0 - 0.88) / 0.2)

    def test_to_dict_has_every_documented_field(self):
        document = self._report().to_dict()
        names = {field.name for field in dataclasses.fields(TimingReport)}
        assert set(document) == names
        assert set(document["epochs"][0]) == {
            *(field.name for field in dataclasses.fields(EpochTiming)),
            "steps_per_second",
            "samples_per_second",
        }

    def test_str_is_a_short_table_with_the_figures_and_advice(self):
        text = str(self._report())
        lines = text.splitlines()
        assert lines[0].startswith("Input timing: 3 epoch(s), warm-up 1; cached in")
        assert "memory, after map; prefetched" in lines[0]
        assert lines[1].split() == [
            "epoch",
            "train",
            "s",
            "val",
            "s",
            "steps",
            "steps/s",
            "samples/s",
            "1st",
            "step",
            "s",
        ]
        assert lines[3].split()[:4] == ["1", "2.000", "0.000", "10"]
        assert "speedup 5.60x" in text
        assert "- the cache works" in text

    def test_a_long_run_elides_the_middle_epochs(self):
        epochs = scripted_epochs([1.0] * 20, [0.1] * 20)
        lines = str(summarize(epochs)).splitlines()
        assert len(lines) < 15
        assert any(line.strip() == "..." for line in lines)
        assert lines[-2].split()[0] == "20" or lines[-1].split()[0] == "20"

    def test_epoch_times_property(self):
        assert self._report().epoch_times == [2.0, 0.2, 0.2]

    def test_sync_time_sums_the_epochs_waits_and_is_shown(self):
        epochs = [
            dataclasses.replace(epoch, sync_time=wait)
            for epoch, wait in zip(
                scripted_epochs([2.0, 0.2, 0.2], [0.9, 0.02, 0.02]),
                [0.5, 0.25, 0.125],
                strict=True,
            )
        ]
        report = summarize(epochs)
        assert report.sync_time == pytest.approx(0.875)
        assert "waited for the device 0.875 s" in str(report)
        document = json.loads(json.dumps(report.to_dict()))
        assert document["sync_time"] == pytest.approx(0.875)
        assert document["epochs"][0]["sync_time"] == pytest.approx(0.5)
        assert TimingReport.from_dict(document) == report

    def test_a_report_without_sync_time_still_loads(self):
        document = self._report().to_dict()
        del document["sync_time"]
        for epoch in document["epochs"]:
            del epoch["sync_time"]
        report = TimingReport.from_dict(document)
        assert report.sync_time == 0.0
        assert all(epoch.sync_time == 0.0 for epoch in report.epochs)

    def test_missing_figures_read_n_a(self):
        text = str(summarize(scripted_epochs([1.0], [0.5])))
        assert "speedup n/ax" not in text
        assert "steady epoch n/a, compile n/a, speedup n/a," in text

    def test_an_old_report_without_the_fields_still_loads(self):
        document = summarize(
            scripted_epochs([2.0, 1.0, 1.0], [1.0, 0.1, 0.1])
        ).to_dict()
        for name in ("recompiled_epochs", "recompile_time", "input_kind"):
            del document[name]
        report = TimingReport.from_dict(document)
        assert report.recompiled_epochs == () and report.input_kind is None


def test_the_report_types_stay_importable_from_the_analysis_module():
    # docs/api.md documents `keras_bettermodels.timing.analysis`.
    assert analysis.EpochTiming is EpochTiming
    assert analysis.TimingReport is TimingReport
    assert {"EpochTiming", "TimingReport"} <= set(analysis.__all__)


def test_the_report_module_imports_no_backend():
    loaded = heavy_modules_after("import keras_bettermodels.timing.report")
    assert loaded == []
