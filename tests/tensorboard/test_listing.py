"""`/reports` costs the same whatever the reports weigh (`_listing`; issue 26, row 7).

`summary.write_json` writes a small headline beside each report (its size and
top-level scalars); the listing reads the headlines and never decodes a
report whole. Logs written without headlines decode each report once, and the
summary is cached per run, tag, step and wall time. The tests count decodes
(`_decoding.decode` calls and the bytes they were given), never time.
"""

from __future__ import annotations

import json

import pytest

from keras_bettermodels.tensorboard import _decoding, _listing, metadata, summary
from keras_bettermodels.tensorboard.gradient_check_plugin import GradientCheckPlugin
from tests.tensorboard import _reports
from tests.tensorboard._app import serve

pytestmark = pytest.mark.backend_independent

TAG = _reports.GRADIENT_CHECK_TAG
GC = metadata.GRADIENT_CHECK_PLUGIN
HEADLINE = ("relative_error", "verdict", "passed", "method", "backend")
# The largest document the listing may decode: a headline, never a report.
HEADLINE_BYTES = 4096


def _large_report(index: int, variables: int) -> dict:
    """A gradient-check report of `variables` rows (about 135 bytes each)."""
    report = _reports.gradient_check_report({f"dense_{index}/kernel": 10.0**-index})
    row = report["variables"][0]
    report["variables"] = [
        {**row, "name": f"block_{i}/dense_{index}/kernel"} for i in range(variables)
    ]
    return report


class _Decodes:
    """Counts `_decoding.decode` calls and the bytes each was given."""

    def __init__(self, monkeypatch):
        self.sizes: list[int] = []
        decode = _decoding.decode

        def counting(raw, *args, **kwargs):
            self.sizes.append(len(raw))
            return decode(raw, *args, **kwargs)

        monkeypatch.setattr(_decoding, "decode", counting)

    def reports(self) -> list[int]:
        """The decodes of documents larger than a headline."""
        return [size for size in self.sizes if size > HEADLINE_BYTES]


def _write_without_headline(log_dir, step, report, tag=TAG):
    """A report as logs written before headlines hold it: the report alone."""
    value = summary._string_value(
        tag, metadata.create_summary_metadata(GC), json.dumps(report)
    )
    summary.write_values(log_dir, step, [value])


def _listed(served):
    body = served.plugin.reports_impl(_context(), "")
    return {(entry["run"], entry["tag"]): entry for entry in body["reports"]}


def _context():
    from tensorboard import context

    return context.RequestContext()


def test_the_listing_decodes_no_large_report_whole(tmp_path, monkeypatch):
    # Two runs: writing an event costs seconds per MB (TensorBoard's pure-Python
    # CRC), and the count of decodes does not depend on how many runs there are.
    reports = {f"run_{i}": _large_report(i, 24_000 + 2_000 * i) for i in range(2)}
    for run, report in reports.items():
        _reports.write_gradient_check(
            tmp_path / run, 0, _reports.gradient_check_report({"a": 1e-9})
        )
        _reports.write_gradient_check(tmp_path / run, 1, report)
    summary.close_all()
    served = serve(tmp_path, GradientCheckPlugin)
    decodes = _Decodes(monkeypatch)
    read_tags = []
    read_tensors = served.provider.read_tensors

    def recording(*args, run_tag_filter, **kwargs):
        read_tags.extend(run_tag_filter.tags or ())
        return read_tensors(*args, run_tag_filter=run_tag_filter, **kwargs)

    monkeypatch.setattr(served.provider, "read_tensors", recording)
    listed = _listed(served)
    assert sorted(run for run, _ in listed) == sorted(reports)  # no headline tags
    assert decodes.reports() == []  # not one report decoded whole
    assert len(decodes.sizes) == len(reports)  # one headline per run
    assert TAG not in read_tags  # nor even read from the data provider
    for run, report in reports.items():
        entry = listed[run, TAG]
        size = len(json.dumps(report).encode())
        assert size > 3 * 2**20  # several MB each
        assert entry["bytes"] == size and entry["error"] is None
        assert entry["step"] == 1 and entry["steps"] == [0, 1]
        assert entry["summary"] == {name: report[name] for name in HEADLINE}
    # The whole report is still served (and decoded) on request.
    one = served.plugin.report_impl(_context(), "", "run_1", TAG)
    assert one["report"] == reports["run_1"]
    assert decodes.reports() == [len(json.dumps(reports["run_1"]).encode())]


def test_logs_without_headlines_decode_each_report_once(tmp_path, monkeypatch):
    reports = {f"old_{i}": _large_report(i, 1_000) for i in range(3)}
    for run, report in reports.items():
        _write_without_headline(tmp_path / run, 2, report)
    _reports.write_gradient_check(tmp_path / "new", 2, _large_report(5, 1_000))
    summary.close_all()
    served = serve(tmp_path, GradientCheckPlugin)
    decodes = _Decodes(monkeypatch)
    first = _listed(served)
    assert len(decodes.reports()) == len(reports)  # the old ones, once each
    for run, report in reports.items():
        assert first[run, TAG]["summary"] == {name: report[name] for name in HEADLINE}
        assert first[run, TAG]["bytes"] == len(json.dumps(report).encode())
    assert _listed(served) == first
    assert len(decodes.reports()) == len(reports)  # the second listing: none


def test_a_newer_report_than_its_headline_is_decoded_not_misread(tmp_path):
    old, new = _large_report(1, 10), _large_report(7, 10)
    _reports.write_gradient_check(tmp_path / "mixed", 0, old)
    _write_without_headline(tmp_path / "mixed", 3, new)  # no headline at step 3
    summary.close_all()
    entry = _listed(serve(tmp_path, GradientCheckPlugin))["mixed", TAG]
    assert entry["step"] == 3 and entry["summary"]["relative_error"] == 1e-7


def test_a_report_over_the_limit_is_refused_from_its_headline(tmp_path, monkeypatch):
    report = _large_report(2, 100)
    _reports.write_gradient_check(tmp_path / "run", 0, report)
    summary.close_all()
    served = serve(tmp_path, GradientCheckPlugin)
    served.plugin.max_report_bytes = 1000
    decodes = _Decodes(monkeypatch)
    entry = _listed(served)["run", TAG]
    assert "over the plugins' limit of 0.0 MB" in entry["error"]
    assert entry["summary"] is None and entry["bytes"] > 1000
    assert decodes.reports() == []


def test_the_headline_is_written_beside_the_report_in_the_same_event(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    report = {**_large_report(3, 5), "verdict": "x" * 500, "nested": {"a": 1}}
    _reports.write_gradient_check(tmp_path, 4, report)
    summary.close_all()
    events = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0}).Reload()
    (written,) = events.Tensors(TAG)
    (headline,) = events.Tensors(metadata.headline_tag(TAG))
    assert (headline.step, headline.wall_time) == (written.step, written.wall_time)
    content = events.SummaryMetadata(metadata.headline_tag(TAG)).plugin_data.content
    assert metadata.headline_of(content) == TAG
    assert metadata.headline_of(events.SummaryMetadata(TAG).plugin_data.content) is None
    size, fields, complete = metadata.parse_headline(
        summary.read_json(headline.tensor_proto)
    )
    assert size == len(written.tensor_proto.string_val[0])
    assert complete and "variables" not in fields and "nested" not in fields
    assert fields["verdict"] == "x" * metadata.HEADLINE_CHARS
    assert fields["relative_error"] == report["relative_error"]


def test_a_headline_tag_is_no_report_of_its_own(tmp_path):
    from tensorboard import errors

    _reports.write_gradient_check(tmp_path / "run", 0, _large_report(1, 3))
    summary.close_all()
    served = serve(tmp_path, GradientCheckPlugin)
    with pytest.raises(errors.InvalidArgumentError, match="Unknown `tag`"):
        served.plugin.report_impl(_context(), "", "run", metadata.headline_tag(TAG))


def test_the_summary_cache_drops_the_least_recently_used():
    cache = _listing.SummaryCache(size=2)
    summaries = {key: (key, {"n": key}, None) for key in range(3)}
    cache.put((0,), summaries[0])
    cache.put((1,), summaries[1])
    assert cache.get((0,)) == summaries[0]  # now the most recently used
    cache.put((2,), summaries[2])
    assert len(cache) == 2
    assert cache.get((1,)) is None
    assert cache.get((0,)) == summaries[0] and cache.get((2,)) == summaries[2]
    cache.clear()
    assert len(cache) == 0 and cache.get((0,)) is None
