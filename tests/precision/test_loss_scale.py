"""Skipped steps and loss-scale collapse from scripted readings (pure)."""

from __future__ import annotations

import pytest

from keras_bettermodels.precision.loss_scale import (
    LossScaleCheck,
    analyze_loss_scale,
    skipped_steps,
)

pytestmark = pytest.mark.backend_independent


def _checks(rows):
    """rows: (steps_run, iterations_gained, scale) per epoch, after a start reading."""
    start = LossScaleCheck(-1, 0, 0, 2.0**15, label="the start of training")
    return [start] + [
        LossScaleCheck(epoch, steps, gained, scale, label=f"epoch {epoch + 1}")
        for epoch, (steps, gained, scale) in enumerate(rows)
    ]


def _codes(report):
    return [(finding.code, finding.level) for finding in report.findings]


@pytest.mark.parametrize(
    ("steps_run", "gained", "expected"), [(100, 100, 0), (100, 97, 3), (5, 7, 0)]
)
def test_skipped_steps_are_steps_run_minus_iterations_gained(
    steps_run, gained, expected
):
    assert skipped_steps(steps_run, gained) == expected


def test_a_healthy_run_reports_nothing():
    report = analyze_loss_scale(_checks([(100, 100, 2.0**15)] * 4))
    assert report.findings == ()
    assert (report.steps_run, report.skipped_steps, report.skipped_share) == (
        400,
        0,
        0.0,
    )


def test_a_few_early_skips_are_an_info_with_count_and_share():
    report = analyze_loss_scale(_checks([(100, 96, 2.0**11)]))
    assert _codes(report) == [("skipped-steps", "info")]
    message = report.findings[0].message
    assert "4 of 100 training steps (4.0%) in epoch 1" in message
    assert "The loss scale is now 2048." in message
    assert report.skipped_steps == 4 and report.scale == 2048


def test_many_skips_are_a_warning_and_totals_add_up():
    report = analyze_loss_scale(_checks([(100, 99, 2.0**14), (100, 80, 2.0**14)]))
    assert _codes(report) == [("skipped-steps", "warning")]
    assert "21 of 200 (10.5%) so far" in report.findings[0].message
    assert report.skipped_share == pytest.approx(0.105)


@pytest.mark.parametrize(
    ("rows", "levels"),
    [
        # The zoo's attention block, 3 steps an epoch: the scale comes down
        # from 2**15 to where its gradients fit, as it does at every start.
        ([(3, 1, 2.0**14)], ["info"]),
        ([(3, 0, 2.0**12), (3, 1, 2.0**10)], ["info", "info"]),
        # A clean epoch ends the start: later skips are judged by their share.
        (
            [(3, 1, 2.0**14), (3, 3, 2.0**14), (3, 2, 2.0**13)],
            ["info", None, "warning"],
        ),
        # The scale rose (2000 clean steps): the start is over.
        ([(3, 3, 2.0**16), (3, 2, 2.0**15)], [None, "warning"]),
        # Below 1 is no start any more: a warning beside the collapse error.
        ([(20, 0, 2.0**-5)], ["warning"]),
    ],
)
def test_skips_while_the_scale_comes_down_from_its_start_are_an_info(rows, levels):
    found = []
    for end in range(1, len(rows) + 1):
        report = analyze_loss_scale(_checks(rows[:end]))
        skipped = [f for f in report.findings if f.code == "skipped-steps"]
        found.append(skipped[0].level if skipped else None)
    assert found == levels
    if levels[-1] == "info":
        assert "still lowering it from its start" in skipped[0].message


def test_findings_are_about_the_latest_reading_only():
    report = analyze_loss_scale(_checks([(100, 90, 2.0**14), (100, 100, 2.0**14)]))
    assert report.findings == ()
    assert report.skipped_steps == 10


@pytest.mark.parametrize(
    ("scales", "expected"),
    [
        # Fell at 3 readings in a row (start -> e1 -> e2 -> e3): collapsing.
        ([2.0**14, 2.0**13, 2.0**12], [None, None, "warning"]),
        # A rise in between resets the count.
        ([2.0**14, 2.0**15, 2.0**14, 2.0**13], [None, None, None, None]),
        # Still falling: reported once, when it starts.
        ([2.0**14, 2.0**13, 2.0**12, 2.0**11], [None, None, "warning", None]),
        # Below 1 is an error at once, and again only after it recovered.
        ([0.5, 0.25, 2.0, 0.5], ["error", None, None, "error"]),
        # Below 1 after a falling streak: the error is new.
        ([2.0**14, 2.0**13, 2.0**12, 0.5], [None, None, "warning", "error"]),
    ],
)
def test_collapse_is_a_scale_below_one_or_three_falls_in_a_row(scales, expected):
    rows = [(100, 100, scale) for scale in scales]
    levels = []
    for end in range(1, len(rows) + 1):
        report = analyze_loss_scale(_checks(rows[:end]))
        collapse = [f for f in report.findings if f.code == "loss-scale-collapse"]
        levels.append(collapse[0].level if collapse else None)
    assert levels == expected


def test_collapse_message_names_the_scale_and_the_overflow_fix():
    report = analyze_loss_scale(_checks([(8, 0, 0.5)]))
    collapse = next(f for f in report.findings if f.code == "loss-scale-collapse")
    assert "fell below 1 (0.5) in epoch 1" in collapse.message
    assert "65504" in collapse.fix


def test_without_loss_scaling_there_is_no_scale_to_watch():
    checks = [LossScaleCheck(0, 10, 10, None), LossScaleCheck(1, 10, 10, None)]
    report = analyze_loss_scale(checks)
    assert report.scale is None and report.findings == ()


def test_an_empty_series_is_an_empty_report():
    report = analyze_loss_scale([])
    assert (report.steps_run, report.skipped_steps, report.findings) == (0, 0, ())


def test_collapse_checks_must_be_positive():
    with pytest.raises(
        ValueError, match="Invalid value for argument `collapse_checks`"
    ):
        analyze_loss_scale([], collapse_checks=0)


def test_the_report_prints_as_a_table_with_its_findings():
    report = analyze_loss_scale(_checks([(100, 100, 2.0**15), (100, 96, 2.0**11)]))
    text = str(report)
    lines = text.splitlines()
    assert lines[0] == (
        "Loss scale: 3 reading(s), 200 steps run, 4 skipped (2.0%); scale 2048"
    )
    assert lines[1].split() == ["reading", "steps", "skipped", "scale"]
    assert set(lines[2]) == {"-"}
    assert lines[3].split()[-3:] == ["0", "0", "32768"]  # the start of training
    assert lines[4].split() == ["epoch", "1", "100", "0", "32768"]
    assert lines[5].split() == ["epoch", "2", "100", "4", "2048"]
    assert [line[2:].split(":")[0] for line in lines[6:]] == [
        f"[{level}] {code}" for code, level in _codes(report)
    ]
    assert "LossScaleReport(" not in text


def test_a_long_report_shows_its_first_and_last_readings():
    report = analyze_loss_scale(_checks([(10, 10, 2.0**15)] * 20))
    names = [line.split("  ")[0] for line in str(report).splitlines()[3:]]
    assert names[:3] == ["the start of training", "epoch 1", "epoch 2"]
    assert names[3] == "..." and names[-1] == "epoch 20"
    assert len(names) == 7


def test_a_report_without_loss_scaling_says_so():
    report = analyze_loss_scale([LossScaleCheck(0, 10, 10, None)])
    assert "no loss scaling" in str(report).splitlines()[0]
    assert str(report).splitlines()[3].split()[-1] == "-"
