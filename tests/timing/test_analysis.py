"""Input timing's pure analysis: compile time, steady epoch, speedup, advice."""

from __future__ import annotations

import json

import pytest

from keras_bettermodels.timing import analysis
from keras_bettermodels.timing.analysis import (
    DROP_THRESHOLD,
    advise,
    compile_time,
    recompiled_epochs,
    speedup,
    steady_epoch_time,
    summarize,
)
from keras_bettermodels.timing.report import EpochTiming, TimingReport
from tests._imports import heavy_modules_after
from tests.timing._scripted import CACHED, pipeline_info, scripted_epochs

pytestmark = pytest.mark.backend_independent


class TestFigures:
    def test_steady_epoch_time_is_the_median_after_the_warmup(self):
        assert steady_epoch_time([9.0, 1.0, 3.0, 2.0]) == 2.0
        assert steady_epoch_time([9.0, 8.0, 1.0, 3.0], warmup_epochs=2) == 2.0
        assert steady_epoch_time([9.0]) is None

    def test_compile_time_is_the_first_steps_excess_over_the_later_median(self):
        assert compile_time([2.4, 0.1, 0.12, 0.1]) == pytest.approx(2.3)

    def test_compile_time_is_never_negative(self):
        assert compile_time([0.05, 0.1, 0.12]) == 0.0

    def test_compile_time_needs_two_epochs(self):
        assert compile_time([2.0]) is None
        assert compile_time([]) is None

    def test_a_recompiled_last_step_adds_its_excess(self):
        """JAX compiles again for a smaller last batch, in the first epoch only."""
        assert compile_time([2.0, 0.1, 0.1], [1.5, 0.01, 0.01]) == pytest.approx(
            1.9 + 1.49
        )

    def test_speedup_leaves_compilation_out_of_the_first_epoch(self):
        assert speedup(2.0, 0.2, 0.88) == pytest.approx(5.6)
        assert speedup(None, 0.2, 0.0) is None
        assert speedup(2.0, 0.0, 0.0) is None
        assert speedup(2.0, None, 0.0) is None

    def test_an_uncached_pipeline_reports_about_1_however_long_tracing_took(self):
        # Every epoch reads the same slow input; the first also traces for 30 s.
        times = [30.0 + 4.0, 4.0, 4.1, 3.9]
        first_steps = [30.0 + 0.4, 0.4, 0.41, 0.39]
        report = summarize(
            scripted_epochs(times, first_steps), pipeline=pipeline_info()
        )
        assert report.compile_time == pytest.approx(30.0)
        assert report.speedup == pytest.approx(1.0)
        assert report.cached is False

    def test_a_cached_pipeline_reports_the_caches_gain_not_tracing(self):
        times = [5.0 + 4.0, 0.4, 0.41, 0.39]
        first_steps = [5.0 + 0.4, 0.04, 0.04, 0.04]
        report = summarize(
            scripted_epochs(times, first_steps), pipeline=pipeline_info(**CACHED)
        )
        assert report.speedup == pytest.approx((9.0 - 5.36) / 0.4)
        assert report.cached is True and report.cache == "memory"

    def test_rates_follow_the_steady_epoch_and_the_batch_size(self):
        report = summarize(
            scripted_epochs([3.0, 0.5, 0.5], [1.0, 0.1, 0.1]), batch_size=32
        )
        assert report.steps_per_second == pytest.approx(20.0)
        assert report.samples_per_second == pytest.approx(640.0)
        no_batch = summarize(scripted_epochs([3.0, 0.5, 0.5], [1.0, 0.1, 0.1]))
        assert no_batch.samples_per_second is None
        assert no_batch.steps_per_second == pytest.approx(20.0)


class TestAdvice:
    def test_uncached_and_flat_names_cache_after_the_map(self):
        (line,) = advise(pipeline=pipeline_info(), speedup=1.02, epochs=4)
        assert line == (
            "epoch time does not drop after the first epoch and the pipeline is "
            "not cached: add `.cache()` after the expensive `map`"
        )

    def test_uncached_without_a_map_names_the_reading_steps(self):
        (line,) = advise(pipeline=pipeline_info(maps=0), speedup=1.0, epochs=4)
        assert "add `.cache()` after the steps that read and decode" in line

    def test_uncached_but_faster_later_says_nothing_about_caching(self):
        assert advise(pipeline=pipeline_info(), speedup=3.0, epochs=4) == ()

    def test_a_working_cache_is_confirmed(self):
        (line,) = advise(pipeline=pipeline_info(**CACHED), speedup=9.0, epochs=4)
        assert line.startswith("the cache works")

    def test_cache_before_an_expensive_map(self):
        info = pipeline_info(
            **{**CACHED, "maps_before_cache": 0, "maps_after_cache": 1}
        )
        advice = advise(pipeline=info, speedup=1.05, epochs=4)
        assert advice[0].startswith("the cache sits before an expensive `map`")
        assert len(advice) == 1

    def test_a_python_map_after_the_cache_is_named_even_when_epochs_drop(self):
        info = pipeline_info(
            **{**CACHED, "maps_after_cache": 1, "python_map_after_cache": True}
        )
        advice = advise(pipeline=info, speedup=2.0, epochs=4)
        assert any("sits before an expensive `map`" in line for line in advice)

    def test_a_cheap_map_after_a_working_cache_is_fine(self):
        info = pipeline_info(**{**CACHED, "maps_after_cache": 1})
        (line,) = advise(pipeline=info, speedup=8.0, epochs=4)
        assert line.startswith("the cache works")

    def test_reused_file_cache(self):
        info = pipeline_info(**{**CACHED, "cache": "file", "cache_path": "/data/c"})
        (line,) = advise(pipeline=info, speedup=1.0, epochs=4, cache_reused=True)
        assert line.startswith("a file cache from an earlier run was reused")
        assert "/data/c" in line

    def test_partly_filled_cache(self):
        advice = advise(
            pipeline=pipeline_info(**CACHED),
            speedup=1.0,
            epochs=2,
            cache_partial=True,
            steps_read=6,
        )
        assert advice[0].startswith(
            "the cache was only partly filled and will be discarded (only 6 "
        )
        assert len(advice) == 1

    def test_take_after_cache_is_a_partly_filled_cache(self):
        info = pipeline_info(**{**CACHED, "take_after_cache": True})
        (line,) = advise(pipeline=info, speedup=1.0, epochs=3, cache_partial=True)
        assert "only partly filled and will be discarded" in line
        assert "`.take(k)` before `.cache()`" in line

    def test_endless_repeat_before_cache(self):
        info = pipeline_info(**{**CACHED, "repeat_before_cache": True})
        (line,) = advise(pipeline=info, speedup=1.0, epochs=3)
        assert "endless `repeat()`" in line

    def test_shuffle_before_cache(self):
        info = pipeline_info(**{**CACHED, "shuffle_before_cache": True})
        advice = advise(pipeline=info, speedup=9.0, epochs=3)
        assert any("`shuffle` runs before `cache`" in line for line in advice)

    def test_cached_but_flat_without_a_reason(self):
        (line,) = advise(pipeline=pipeline_info(**CACHED), speedup=1.0, epochs=3)
        assert line.startswith("the pipeline is cached but epoch time does not drop")

    def test_not_prefetched(self):
        advice = advise(pipeline=pipeline_info(prefetched=False), speedup=3.0, epochs=3)
        assert advice == (
            "the pipeline does not end with `prefetch`: add "
            "`.prefetch(tf.data.AUTOTUNE)` last, so that input overlaps training",
        )

    def test_one_epoch_is_too_few(self):
        (line,) = advise(pipeline=None, speedup=None, epochs=1)
        assert "train more than warmup_epochs=1 epochs" in line

    def test_numpy_input_gets_no_cache_advice(self):
        assert advise(pipeline=None, speedup=1.0, epochs=4) == ()

    def test_the_threshold_separates_flat_from_dropping(self):
        flat = advise(pipeline=pipeline_info(), speedup=DROP_THRESHOLD - 0.01, epochs=3)
        drops = advise(pipeline=pipeline_info(), speedup=DROP_THRESHOLD, epochs=3)
        assert flat and not drops


class TestRecompilation:
    """An epoch after the warm-up that compiles again is reported apart."""

    # JAX, as measured in issue 15: 40 ms steady epochs, the second 1.2 s.
    TIMES = [3.0, 1.2, 0.04, 0.042, 0.038]
    FIRST_STEPS = [2.5, 1.1, 0.004, 0.004, 0.004]

    def test_a_slow_second_epoch_is_recompiled_not_steady(self):
        epochs = scripted_epochs(self.TIMES, self.FIRST_STEPS)
        assert recompiled_epochs(epochs) == (1,)
        report = summarize(epochs, pipeline=pipeline_info(), backend="jax")
        assert report.recompiled_epochs == (1,)
        assert report.steady_epoch_time == pytest.approx(0.04)
        assert report.recompile_time == pytest.approx(1.2 - 0.04)
        # Counted as steady, the 1.2 s epoch would have moved the median.
        assert steady_epoch_time(self.TIMES) == pytest.approx(0.041)

    def test_an_uncached_pipeline_with_a_recompile_still_reads_about_1(self):
        # Every epoch reads the same slow input (1 s); the first traces 5 s
        # and the third compiles again for 2 s in its first step.
        times = [6.0, 1.0, 3.0, 1.02, 0.98]
        first_steps = [5.1, 0.1, 2.1, 0.1, 0.1]
        report = summarize(
            scripted_epochs(times, first_steps), pipeline=pipeline_info()
        )
        assert report.recompiled_epochs == (2,)
        assert report.speedup == pytest.approx(1.0)
        assert report.advice[0].startswith("epoch(s) 3 compiled again (+2.000 s)")
        assert report.advice[1].startswith("epoch time does not drop")

    def test_a_recompiled_first_step_counts_even_when_the_epoch_is_long(self):
        # 10 s epochs; the second one's first step takes 6 s instead of 0.1 s.
        times = [20.0, 15.9, 10.0, 10.1, 9.9]
        first_steps = [8.0, 6.0, 0.1, 0.1, 0.1]
        assert recompiled_epochs(scripted_epochs(times, first_steps)) == (1,)

    def test_a_recompiled_last_step_counts_too(self):
        times = [4.0, 2.0, 1.0, 1.0]
        last_steps = [2.0, 1.0, 0.01, 0.01]
        epochs = scripted_epochs(times, [0.1] * 4, last_steps=last_steps)
        assert recompiled_epochs(epochs) == (1,)

    @pytest.mark.parametrize(
        ("times", "first_steps"),
        [
            ([3.0, 0.05, 0.04, 0.045], [2.0, 0.005, 0.004, 0.004]),  # noise
            ([3.0, 0.08, 0.04, 0.045], [2.0, 0.005, 0.004, 0.004]),  # 2x, not 3x
            # A 3x first step, but only 0.2 of an epoch: it barely moves it.
            ([3.0, 1.2, 1.0, 1.0], [2.0, 0.3, 0.1, 0.1]),
            ([3.0, 1.0], [2.0, 0.1]),  # one steady epoch: nothing to compare
            # 4x a 30 ms epoch, but 90 ms: a stall, not a compilation.
            ([3.0, 0.12, 0.03, 0.03], [2.0, 0.1, 0.004, 0.004]),
        ],
    )
    def test_noise_is_not_a_recompile(self, times, first_steps):
        assert recompiled_epochs(scripted_epochs(times, first_steps)) == ()
        assert summarize(scripted_epochs(times, first_steps)).recompile_time is None

    def test_a_compile_before_the_first_step_begins_counts(self):
        # JAX, measured: 9.2 s from the epoch's start to its first step, the
        # step itself 56 ms; 3 s steady epochs would hide it from the total.
        epochs = [
            EpochTiming(0, 14.0, 0.0, 50, 0.0, 5.0),
            EpochTiming(1, 5.0, 0.0, 50, 2.0, 2.06),
            EpochTiming(2, 3.0, 0.0, 50, 0.01, 0.07),
            EpochTiming(3, 3.1, 0.0, 50, 0.01, 0.07),
        ]
        assert recompiled_epochs(epochs) == (1,)

    def test_the_warmup_epochs_are_never_flagged(self):
        epochs = scripted_epochs(
            [3.0, 1.2, 0.04, 0.04, 0.04], [2.5, 1.1, 0.004, 0.004, 0.004]
        )
        assert recompiled_epochs(epochs, warmup_epochs=2) == ()

    def test_the_compile_time_baseline_leaves_the_recompiled_epoch_out(self):
        epochs = scripted_epochs([3.0, 0.1, 2.0, 0.1], [2.5, 0.01, 1.9, 0.01])
        assert summarize(epochs).compile_time == pytest.approx(2.49)

    def test_report_round_trips_and_shows_the_recompile(self):
        report = summarize(
            scripted_epochs(self.TIMES, self.FIRST_STEPS),
            backend="jax",
            input_kind="PyDataset",
        )
        document = json.loads(json.dumps(report.to_dict()))
        assert document["recompiled_epochs"] == [1]
        assert document["recompile_time"] == pytest.approx(1.16)
        assert document["input_kind"] == "PyDataset"
        assert TimingReport.from_dict(document) == report
        text = str(report)
        assert "recompiled 1.160 s in epoch(s) 2" in text
        assert text.splitlines()[4].endswith("recompiled")  # the table's 2nd epoch
        assert "not a tf.data pipeline (PyDataset)" in text.splitlines()[0]
        assert "JAX often compiles once more" in report.advice[0]


def test_the_analysis_imports_no_backend():
    loaded = heavy_modules_after("import keras_bettermodels.timing")
    assert loaded == []
    assert analysis.__name__ == "keras_bettermodels.timing.analysis"
