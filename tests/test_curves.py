"""curves.diagnose: Ng's reading of the learning curves, on hand-made curves."""

from __future__ import annotations

import importlib

import pytest

import keras_bettermodels as kbm
from keras_bettermodels.curves import Finding, diagnose

# An over-fitting run: the training error falls to 0.5 %, validation stalls at 11 %.
OVERFITS = {
    "loss": [2.0, 0.5, 0.1, 0.02],
    "val_loss": [2.0, 0.6, 0.5, 0.7],
    "accuracy": [0.3, 0.9, 0.98, 0.995],
    "val_accuracy": [0.3, 0.85, 0.89, 0.89],
}
# An under-fitting one: both errors stay near 15 % (Ng's "train 15 %, dev 15.5 %").
UNDERFITS = {
    "loss": [2.0, 1.0, 0.8],
    "val_loss": [2.0, 1.0, 0.82],
    "accuracy": [0.5, 0.8, 0.85],
    "val_accuracy": [0.5, 0.8, 0.845],
}


def _codes(findings):
    return [finding.code for finding in findings]


@pytest.mark.backend_independent
class TestCurves:
    def test_an_over_fitting_curve_is_high_variance(self):
        (finding,) = diagnose(OVERFITS)
        assert finding.code == "high-variance"
        assert finding.value == pytest.approx(0.11 - 0.005)
        assert "10.5 points" in finding.message
        assert "more data" in finding.message and "L1/L2" in finding.message

    def test_an_under_fitting_curve_is_high_bias(self):
        (finding,) = diagnose(UNDERFITS)
        assert finding.code == "high-bias"
        assert finding.value == pytest.approx(0.15)
        assert "bigger model" in finding.message and "longer" in finding.message

    @pytest.mark.parametrize(
        ("train_accuracy", "val_accuracy", "target_error", "expected"),
        [
            # Ng's examples (error rates, human-level as the target):
            (0.99, 0.89, None, ["high-variance"]),  # train 1 %, dev 11 %
            (0.85, 0.84, None, ["high-bias"]),  # train 15 %, dev 16 %
            (0.85, 0.65, None, ["high-variance", "high-bias"]),  # larger first
            (0.995, 0.99, None, ["good-fit"]),  # 0.5 %, 1 %
            (0.92, 0.90, 0.01, ["high-bias", "high-variance"]),  # 7 > 2 points
            (0.92, 0.90, 0.075, ["high-variance"]),  # bias 0.5 point
        ],
    )
    def test_ngs_examples(self, train_accuracy, val_accuracy, target_error, expected):
        curves = {
            "loss": [1.0],
            "val_loss": [1.0],
            "accuracy": [train_accuracy],
            "val_accuracy": [val_accuracy],
        }
        assert _codes(diagnose(curves, target_error)) == expected

    @pytest.mark.parametrize(
        ("loss", "val_loss", "expected"),
        [
            # Tolerance: 10 % of the first training loss, 2.0 -> 0.2.
            ([2.0, 0.05], [2.0, 0.6], ["high-variance"]),
            ([2.0, 1.0], [2.0, 1.1], ["high-bias"]),
            ([2.0, 0.1], [2.0, 0.25], ["good-fit"]),
        ],
    )
    def test_losses_alone_are_read_too(self, loss, val_loss, expected):
        assert _codes(diagnose({"loss": loss, "val_loss": val_loss})) == expected

    def test_a_history_object_is_read_like_its_dict(self):
        class History:  # what keras.callbacks.History exposes
            history = OVERFITS

        assert diagnose(History()) == diagnose(OVERFITS)

    def test_findings_round_trip_through_dicts(self):
        for finding in diagnose(OVERFITS):
            assert Finding.from_dict(finding.to_dict()) == finding
            assert str(finding) == finding.message

    @pytest.mark.parametrize(
        ("history", "target_error", "error", "match"),
        [
            ({"loss": [1.0]}, None, ValueError, "validation_data"),
            ([1.0, 2.0], None, TypeError, "`history`"),
            (OVERFITS, -0.1, ValueError, "`target_error`"),
            (OVERFITS, "1%", TypeError, "`target_error`"),
        ],
    )
    def test_bad_input_is_explained(self, history, target_error, error, match):
        with pytest.raises(error, match=match):
            diagnose(history, target_error)

    def test_the_package_exports_the_function(self):
        importlib.import_module("keras_bettermodels.curves")
        assert kbm.diagnose is diagnose
        assert kbm.diagnose(OVERFITS) == diagnose(OVERFITS)


class TestL2WithAdam:
    def _model(self, optimizer, regularizer="l2"):
        import keras

        model = keras.Sequential(
            [
                keras.Input((4,)),
                keras.layers.Dense(3, kernel_regularizer=regularizer, name="hidden"),
                keras.layers.Dense(1, name="out"),
            ]
        )
        model.compile(optimizer, "mse")
        return model

    def test_l2_with_adam_is_found(self):
        import keras

        findings = diagnose(OVERFITS, model=self._model(keras.optimizers.Adam()))
        assert _codes(findings) == ["high-variance", "l2-with-adam"]
        assert "hidden" in findings[-1].message and "AdamW" in findings[-1].message

    @pytest.mark.parametrize("case", ["adamw", "sgd", "no_l2", "l1"])
    def test_not_found_where_it_does_not_apply(self, case):
        import keras

        optimizer = {
            "adamw": keras.optimizers.AdamW(),
            "sgd": keras.optimizers.SGD(),
        }.get(case, keras.optimizers.Adam())
        regularizer = {"no_l2": None, "l1": "l1"}.get(case, "l2")
        model = self._model(optimizer, regularizer)
        assert "l2-with-adam" not in _codes(diagnose(OVERFITS, model=model))
