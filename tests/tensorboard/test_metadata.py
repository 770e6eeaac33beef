"""Plugin names, content versions and headlines of the package's summaries."""

from __future__ import annotations

import pytest

from keras_bettermodels.tensorboard import metadata

pytestmark = pytest.mark.backend_independent

GC = metadata.GRADIENT_CHECK_PLUGIN


def test_plugin_names_are_prefixed_bettermodels():
    assert metadata.GRADIENT_CHECK_PLUGIN == "bettermodels_gradient_check"
    assert metadata.INPUT_TIMING_PLUGIN == "bettermodels_input_timing"


@pytest.mark.parametrize("content", [b'{"version": 99}', b"not json", b'{"v": 1}'])
def test_unknown_plugin_content_is_refused(content):
    with pytest.raises(ValueError, match="Received"):
        metadata.parse_plugin_content(content)


@pytest.mark.parametrize(
    "content",
    [
        b'{"version": true}',
        b'{"version": false}',
        b'{"version": -5}',
        b'{"version": 0}',
        b'{"version": "1"}',
        b'{"version": 1.0}',
        b'{"version": null}',
        b"[1]",
    ],
)
def test_plugin_content_version_must_be_a_positive_integer(content):
    with pytest.raises(ValueError, match=r"Expected a positive integer\. Received"):
        metadata.parse_plugin_content(content)


@pytest.mark.parametrize("version", [True, -5, 0, "1", 1.0])
def test_the_writer_refuses_a_version_that_is_not_a_positive_integer(version):
    with pytest.raises(ValueError, match="Expected a positive integer"):
        metadata.create_summary_metadata(
            metadata.GRADIENT_CHECK_PLUGIN, version=version
        )


def test_plugin_content_that_is_huge_or_deep_is_refused_in_few_words():
    for content in (b" " * 10**6 + b'{"version": 1}', b"[" * 100_000):
        with pytest.raises(ValueError, match="Unreadable plugin content") as caught:
            metadata.parse_plugin_content(content)
        assert len(str(caught.value)) < 400
    assert metadata.parse_plugin_content(b'{"version": 1}') == {"version": 1}


def test_a_headline_keeps_the_top_level_scalars_and_says_when_it_is_cut():
    report = {"a": 1, "b": "x" * 500, "c": None, "d": [1], "e": {"f": 2}}
    headline = metadata.report_headline(report, 123)
    assert headline == {
        "bytes": 123,
        "fields": {"a": 1, "b": "x" * metadata.HEADLINE_CHARS, "c": None},
        "complete": True,
    }
    assert metadata.parse_headline(headline) == (123, headline["fields"], True)
    many = {f"k{i}": i for i in range(metadata.HEADLINE_MAX_FIELDS + 1)}
    size, fields, complete = metadata.parse_headline(metadata.report_headline(many, 9))
    assert size == 9
    assert len(fields) == metadata.HEADLINE_MAX_FIELDS and complete is False


@pytest.mark.parametrize(
    "document",
    [
        [1],
        {"bytes": -1, "fields": {}, "complete": True},
        {"bytes": True, "fields": {}, "complete": True},
        {"bytes": 1, "fields": {"a": [1]}, "complete": True},
        {"bytes": 1, "fields": {}, "complete": 1},
    ],
)
def test_what_is_not_a_headline_is_refused(document):
    with pytest.raises(ValueError, match="headline"):
        metadata.parse_headline(document)


def test_a_headline_is_told_apart_by_its_header_whatever_its_version():
    tag = "input_timing/report"
    assert metadata.headline_tag(tag) == "input_timing/report/headline"
    header = metadata.create_summary_metadata(GC, headline_of=tag)
    assert metadata.headline_of(header.plugin_data.content) == tag
    newer = b'{"version": 99, "headline_of": "t"}'
    assert metadata.headline_of(newer) == "t"
    report = metadata.create_summary_metadata(GC).plugin_data.content
    for content in (report, b"not json", b" " * 10**5, b'{"headline_of": 1}'):
        assert metadata.headline_of(content) is None
