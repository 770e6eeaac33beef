"""The backend shared by the package's TensorBoard plugins (private).

Each plugin renders one kind of JSON report that
`keras_bettermodels.tensorboard.summary.write_json` stored under the plugin's
name. The backend reads them through `context.data_provider` only, so it works
with TensorBoard's fast (Rust) loader and with `--load_fast=false` alike, and it
never answers a request with a 500:

- `GET /index.js` and `GET /static/<file>`: the frontend, an ES module per
  plugin; a path that leaves the static folder is a 404.
- `GET /reports`: a summary of the latest report of every run and tag (its
  step, size and headline numbers), with the steps of the earlier ones; never
  the whole reports, which can be large. It reads the small headline that
  `write_json` stores beside each report (`metadata.report_headline`), so its
  cost does not grow with the reports' size; a report without one (logs
  written before headlines were) is decoded once, and its summary cached per
  run, tag, step and wall time.
- `GET /report?run=...&tag=...[&step=...]`: one whole report; an unknown run,
  tag or step is a 400 with a JSON `{"error": ...}`.

A report that cannot be read (written by a newer or invalid content version,
not UTF-8, not JSON, not an object, nested deeper than `MAX_REPORT_DEPTH`,
larger than `MAX_REPORT_BYTES`) does not fail the request: its entry carries
an `error` message that the tab shows in place of the report, and the other
runs are listed as usual.

Nothing here imports Keras, TensorFlow or a backend: TensorBoard imports the
plugins when it starts.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from tensorboard import errors, plugin_util
from tensorboard.backend import http_util
from tensorboard.data import provider
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from keras_bettermodels.tensorboard import metadata

__all__ = ["MAX_REPORT_BYTES", "MAX_REPORT_DEPTH", "STATIC_ROOT", "ReportPlugin"]

_logger = logging.getLogger(__name__)

#: The largest report, in bytes of JSON, that the plugins decode and serve.
#: The package's reports weigh kilobytes (a 200-variable gradient check is
#: about 30 kB); a larger one is listed with an error instead.
MAX_REPORT_BYTES = 8 * 2**20
#: The deepest nesting of JSON arrays and objects a report may have. The
#: package's reports are 4 levels deep; a deeper one is listed with an error
#: (JSON nested ~1000 deep makes Python's decoder raise `RecursionError`).
MAX_REPORT_DEPTH = 64
# A headline (`metadata.report_headline`) is a few hundred bytes; anything
# much larger, or nested at all deeper, is not one.
_MAX_HEADLINE_BYTES = 64 * 2**10
_MAX_HEADLINE_DEPTH = 2
# Summaries of reports without a headline, decoded once: at most this many are
# kept (a few hundred bytes each).
_CACHED_SUMMARIES = 4096

#: The folder that holds the plugins' frontends.
STATIC_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")

_CONTENT_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
_JSON = "application/json"
# TensorBoard keeps 10 reports per run and tag unless told otherwise
# (`--samples_per_plugin`). Listings read at most this many, evenly sampled and
# always with the latest: the fast loader sends every report it reads over
# gRPC, and a long run with `--samples_per_plugin=<name>=1000` would otherwise
# send all of them (30 MB for 200-variable reports) for every page view.
_LISTED_STEPS = 100
# A step that is not among the sampled ones is looked for among all reports.
_ALL_STEPS = 1_000_000
# Unknown-run messages list at most this many of the runs that exist.
_LISTED_NAMES = 20

Listing = Mapping[str, Mapping[str, provider.TensorTimeSeries]]
# What the listing shows of one report: `bytes`, `summary`, `error`.
_Summary = tuple[int | None, dict[str, Any] | None, str | None]


class _BadRequest(errors.InvalidArgumentError):
    """A request with an unknown run, tag or step: answered with a 400."""


def _names(names: list[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:_LISTED_NAMES])
    more = len(names) - _LISTED_NAMES
    return shown + (f" and {more} more" if more > 0 else "")


def _wsgi(handler: Callable[[wrappers.Request], Any]) -> Callable[..., Any]:
    """Turns `handler(request) -> response` into a WSGI application."""

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return handler(wrappers.Request(environ))(environ, start_response)

    return application


class _Unreadable(ValueError):
    """A report that the plugin does not decode; the message says why."""


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


def _depth_over(document: Any, limit: int) -> bool:
    """Whether `document` nests arrays and objects deeper than `limit`.

    Walks the document with a stack of its own, not by recursion, so that any
    depth that the decoder accepted is measured.
    """
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = list(value.values())
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _payload(datum: provider.TensorDatum) -> bytes:
    """Returns the bytes `write_json` stored in one tensor datum."""
    values = np.asarray(datum.numpy, dtype=object).reshape(-1)
    if not values.size:
        raise _Unreadable("The tensor holds no JSON document (no string).")
    raw = values[0]
    if isinstance(raw, str):
        return raw.encode()
    if not isinstance(raw, bytes):
        raise _Unreadable(
            f"Expected a string tensor holding a JSON document. Received a "
            f"tensor of {np.asarray(datum.numpy).dtype}."
        )
    return raw


def _too_large(size: int, max_bytes: int) -> str:
    return (
        f"It is {_megabytes(size)} of JSON, over the plugins' limit of "
        f"{_megabytes(max_bytes)} for one report, so it is not shown. Write "
        "smaller reports (fewer variables or epochs per report)."
    )


def _decode(raw: bytes, max_bytes: int, max_depth: int) -> dict[str, Any]:
    """Returns the JSON object in `raw`, or raises `_Unreadable` saying why."""
    if len(raw) > max_bytes:
        raise _Unreadable(_too_large(len(raw), max_bytes))
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise _Unreadable(f"It is not UTF-8 text: {error}.") from None
    except json.JSONDecodeError as error:
        raise _Unreadable(f"It is not JSON: {error}.") from None
    except RecursionError:
        raise _Unreadable(
            f"Its JSON is nested too deeply to decode (the limit is "
            f"{max_depth} levels)."
        ) from None
    if not isinstance(document, dict):
        raise _Unreadable(
            f"Expected a JSON object. Received a JSON {type(document).__name__}."
        )
    if _depth_over(document, max_depth):
        raise _Unreadable(
            f"Its JSON is nested deeper than the limit of {max_depth} levels."
        )
    return document


def _headline(document: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The fields of `document` named in `fields` whose values are scalars
    (strings cut as in `metadata.report_headline`)."""
    found: dict[str, Any] = {}
    for name in fields:
        value = document.get(name)
        if isinstance(value, str):
            found[name] = value[: metadata.HEADLINE_CHARS]
        elif value is None or isinstance(value, bool | int | float):
            found[name] = value
    return found


# run -> report tag -> (the tag of its headline, the headline's series)
_Headlines = dict[str, dict[str, tuple[str, provider.TensorTimeSeries]]]


def _split(listing: Listing) -> tuple[Listing, _Headlines]:
    """Splits the data provider's listing into reports and their headlines.

    Returns:
        `(reports, headlines)`: run -> tag -> series of the reports, and run
        -> report tag -> `(headline tag, headline series)`.
    """
    reports: dict[str, dict[str, provider.TensorTimeSeries]] = {}
    headlines: _Headlines = {}
    for run, tags in listing.items():
        for tag, series in tags.items():
            of = metadata.headline_of(series.plugin_content)
            if of is None:
                reports.setdefault(run, {})[tag] = series
            else:
                headlines.setdefault(run, {})[of] = (tag, series)
    return reports, headlines


def _blank_entry(run: str, tag: str, steps: list[int]) -> dict[str, Any]:
    """A listing's entry for one report, before anything was read of it."""
    return {
        "run": run,
        "tag": tag,
        "steps": steps,
        "steps_sampled": len(steps) >= _LISTED_STEPS,
        "step": None,
        "wall_time": None,
        "bytes": None,
        "summary": None,
        "error": None,
    }


def _read_headline(datum: provider.TensorDatum) -> tuple[int, dict[str, Any], bool]:
    """`(bytes, fields, complete)` of a headline datum; `ValueError` if it is none."""
    try:
        document = _decode(_payload(datum), _MAX_HEADLINE_BYTES, _MAX_HEADLINE_DEPTH)
    except _Unreadable as error:
        raise ValueError(str(error)) from None
    return metadata.parse_headline(document)


class ReportPlugin(base_plugin.TBPlugin):
    """A dynamic plugin that renders one JSON report per run, tag and step.

    Subclasses set `plugin_name` (from `metadata`), `tab_name`, the folder of
    their frontend under `static/`, and the report's name in messages.

    Args:
        context: the `base_plugin.TBContext` TensorBoard passes to plugins;
            only its `data_provider` is used.
    """

    plugin_name: str = ""
    #: The tab's title in TensorBoard's menu.
    tab_name: str = ""
    #: The folder under `static/` that holds this plugin's `index.js`.
    static_folder: str = ""
    #: The report's top-level fields that `/reports` lists as its summary
    #: (scalars only: numbers, strings, booleans, null).
    headline_fields: tuple[str, ...] = ()
    #: The largest report this plugin decodes, in bytes of JSON.
    max_report_bytes: int = MAX_REPORT_BYTES
    #: The deepest nesting of JSON arrays and objects a report may have.
    max_report_depth: int = MAX_REPORT_DEPTH

    def __init__(self, context: base_plugin.TBContext) -> None:
        super().__init__(context)
        self._data_provider = context.data_provider
        # (experiment, run, tag, step, wall time) -> what the listing shows of
        # a report without a headline, decoded once; least recent first.
        self._summaries: collections.OrderedDict[tuple[Any, ...], _Summary] = (
            collections.OrderedDict()
        )
        self._summaries_lock = threading.Lock()

    # TensorBoard's plugin interface.

    def get_plugin_apps(self) -> dict[str, Callable[..., Any]]:
        """Returns the routes, relative to `/data/plugin/<plugin_name>`."""
        return {
            "/index.js": _wsgi(self._serve_index),
            "/static/*": _wsgi(self._serve_static),
            "/reports": _wsgi(self._serve_reports),
            "/report": _wsgi(self._serve_report),
        }

    def is_active(self) -> bool:
        """Returns `False`: TensorBoard lists the tab whenever the logs hold data.

        TensorBoard asks only when its data provider found none of the
        plugin's summaries, so there is nothing to show.
        """
        return False

    def frontend_metadata(self) -> base_plugin.FrontendMetadata:
        """Returns the tab's name and its ES module, loaded in an iframe."""
        return base_plugin.FrontendMetadata(
            es_module_path="/index.js", tab_name=self.tab_name
        )

    # Data, through the data provider only.

    def _listing(self, ctx: Any, experiment_id: str) -> Listing:
        if self._data_provider is None:
            return {}
        return self._data_provider.list_tensors(
            ctx, experiment_id=experiment_id, plugin_name=self.plugin_name
        )

    def _read(
        self,
        ctx: Any,
        experiment_id: str,
        runs: list[str],
        tags: list[str],
        downsample: int = _LISTED_STEPS,
    ) -> tuple[dict[str, Mapping[str, list[provider.TensorDatum]]], dict[str, str]]:
        """Reads the reports of `runs` and `tags`.

        Returns:
            `(data, failures)`: run -> tag -> data, and run -> message for
            the runs whose reads failed. One read serves every run; when it
            fails (a loader's message size limit, an unreadable file), each
            run is read on its own, so that one bad run does not hide the
            others.
        """
        if not runs or not tags or self._data_provider is None:
            return {}, {}
        try:
            return dict(self._read_once(ctx, experiment_id, runs, tags, downsample)), {}
        except Exception as error:
            if len(runs) == 1:
                _logger.warning(
                    "Reading the %s reports of run %r failed: %r",
                    self.plugin_name,
                    runs[0],
                    error,
                )
                return {}, {runs[0]: f"Its reports could not be read: {error}"}
            _logger.warning(
                "Reading the %s reports of %d runs at once failed (%r); reading "
                "them run by run.",
                self.plugin_name,
                len(runs),
                error,
            )
        data: dict[str, Mapping[str, list[provider.TensorDatum]]] = {}
        failures: dict[str, str] = {}
        for run in runs:
            one, failed = self._read(ctx, experiment_id, [run], tags, downsample)
            data.update(one)
            failures.update(failed)
        return data, failures

    def _read_once(
        self,
        ctx: Any,
        experiment_id: str,
        runs: list[str],
        tags: list[str],
        downsample: int,
    ) -> Mapping[str, Mapping[str, list[provider.TensorDatum]]]:
        assert self._data_provider is not None  # checked by `_read`
        return self._data_provider.read_tensors(
            ctx,
            experiment_id=experiment_id,
            plugin_name=self.plugin_name,
            downsample=downsample,
            run_tag_filter=provider.RunTagFilter(runs=runs, tags=tags),
        )

    def _entry(
        self,
        run: str,
        tag: str,
        series: provider.TensorTimeSeries,
        listed: list[provider.TensorDatum],
        step: int | None = None,
        every: list[provider.TensorDatum] | None = None,
        *,
        full: bool = False,
        failure: str | None = None,
        cache_key: tuple[Any, ...] | None = None,
    ) -> dict[str, Any]:
        """Returns the response entry for one report (the latest by default).

        `listed` are the reports read for the listing (at most
        `_LISTED_STEPS`, always with the latest); `every` holds all of them,
        when `step` had to be looked for there. `full` adds the whole report;
        `failure` is why the run's reports could not be read, if they could not.
        With `cache_key` (the listing's `(experiment, run, tag)`), the
        report's summary is decoded once and kept, by step and wall time.
        """
        steps = [datum.step for datum in listed]
        entry = _blank_entry(run, tag, steps)
        if full:
            entry["report"] = None
        try:
            metadata.parse_plugin_content(series.plugin_content)
        except ValueError as error:
            entry["error"] = str(error)
            return entry
        if failure is not None:
            entry["error"] = failure
            return entry
        if not listed:
            entry["error"] = "No report has been read for this tag yet."
            return entry
        if step is None:
            datum = listed[-1]
        else:
            matches = [datum for datum in every or listed if datum.step == step]
            if not matches:
                raise _BadRequest(
                    f"Unknown `step` for run {run!r} and tag {tag!r}. Expected "
                    f"one of the steps of its reports, such as {steps[-5:]}. "
                    f"Received: step={step}"
                )
            datum = matches[-1]
            entry["steps"] = sorted({*steps, step})
        entry["step"], entry["wall_time"] = datum.step, datum.wall_time
        if cache_key is not None and not full:
            key = (*cache_key, datum.step, datum.wall_time)
            with self._summaries_lock:
                cached = self._summaries.get(key)
                if cached is not None:
                    self._summaries.move_to_end(key)
            if cached is None:
                cached = self._summary(run, tag, datum)
                with self._summaries_lock:
                    self._summaries[key] = cached
                    while len(self._summaries) > _CACHED_SUMMARIES:
                        self._summaries.popitem(last=False)
            entry["bytes"], entry["summary"], entry["error"] = cached
            return entry
        document = self._document(run, tag, datum, entry)
        if document is not None:
            entry["summary"] = _headline(document, self.headline_fields)
            if full:
                entry["report"] = document
        return entry

    def _document(
        self, run: str, tag: str, datum: provider.TensorDatum, entry: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Decodes the report in `datum`, setting `entry`'s `bytes` (and
        `error`, returning `None`, when it cannot be read)."""
        try:
            raw = _payload(datum)
            entry["bytes"] = len(raw)
            return _decode(raw, self.max_report_bytes, self.max_report_depth)
        except _Unreadable as error:
            entry["error"] = f"The report at step {datum.step} is unreadable. {error}"
        except Exception as error:
            _logger.warning(
                "Decoding the %s report of run %r, tag %r failed: %r",
                self.plugin_name,
                run,
                tag,
                error,
            )
            entry["error"] = f"The report at step {datum.step} is unreadable: {error!r}"
        return None

    def _summary(self, run: str, tag: str, datum: provider.TensorDatum) -> _Summary:
        """`(bytes, summary, error)` of the report in `datum`, decoded whole."""
        entry: dict[str, Any] = {"bytes": None, "error": None}
        document = self._document(run, tag, datum, entry)
        summary = (
            None if document is None else _headline(document, self.headline_fields)
        )
        return entry["bytes"], summary, entry["error"]

    def _headline_entry(
        self,
        run: str,
        tag: str,
        series: provider.TensorTimeSeries,
        headline_series: provider.TensorTimeSeries,
        headlines: list[provider.TensorDatum],
    ) -> dict[str, Any] | None:
        """The listing's entry for one report, from its headlines alone.

        Returns `None` where the headlines cannot stand for the report (the
        report failed its header check, the latest headline is not the latest
        report's, is unreadable, or lacks a field it left out): the caller
        reads the report instead.
        """
        latest = (headline_series.max_step, headline_series.max_wall_time)
        if not headlines or latest != (series.max_step, series.max_wall_time):
            return None
        datum = headlines[-1]
        try:
            metadata.parse_plugin_content(series.plugin_content)
            metadata.parse_plugin_content(headline_series.plugin_content)
            size, fields, complete = _read_headline(datum)
        except ValueError:
            return None
        if not complete and not all(name in fields for name in self.headline_fields):
            return None
        entry = _blank_entry(run, tag, [headline.step for headline in headlines])
        entry.update(step=datum.step, wall_time=datum.wall_time, bytes=size)
        if size > self.max_report_bytes:
            message = _too_large(size, self.max_report_bytes)
            entry["error"] = f"The report at step {datum.step} is unreadable. {message}"
        else:
            entry["summary"] = {
                name: fields[name] for name in self.headline_fields if name in fields
            }
        return entry

    def reports_impl(self, ctx: Any, experiment_id: str) -> dict[str, Any]:
        """Returns a summary of the latest report of every run and tag, by run.

        The whole reports are not listed (they can be large): `report_impl`
        serves them one at a time.

        Args:
            ctx: the request's `RequestContext`.
            experiment_id: the experiment the request is for.

        Returns:
            `{"plugin": name, "protocol_version": int, "reports": [entry, ...]}`
            where each entry has `run`, `tag`, `steps` (every step read),
            `steps_sampled`, `step`, `wall_time`, `bytes` (the report's size
            in JSON), `summary` (the report's `headline_fields`, or `None`)
            and `error` (a message, or `None`).
        """
        listing, headlines = _split(self._listing(ctx, experiment_id))
        runs = sorted(listing)
        entries: dict[tuple[str, str], dict[str, Any]] = {}
        # First from the headlines: a few hundred bytes per report.
        pairs = [
            (run, tag, *headlines[run][tag])
            for run in runs
            for tag in listing[run]
            if tag in headlines.get(run, {})
        ]
        data, _ = self._read(
            ctx,
            experiment_id,
            sorted({run for run, *_ in pairs}),
            sorted({headline_tag for _, _, headline_tag, _ in pairs}),
        )
        for run, tag, headline_tag, headline_series in pairs:
            entry = self._headline_entry(
                run,
                tag,
                listing[run][tag],
                headline_series,
                list(data.get(run, {}).get(headline_tag, [])),
            )
            if entry is not None:
                entries[run, tag] = entry
        # Then the reports without a usable headline: decoded once, cached.
        left = [
            (run, tag)
            for run in runs
            for tag in listing[run]
            if (run, tag) not in entries
        ]
        left_runs = sorted({run for run, _ in left})
        left_tags = sorted({tag for _, tag in left})
        data, failures = self._read(ctx, experiment_id, left_runs, left_tags)
        for run, tag in left:
            entries[run, tag] = self._entry(
                run,
                tag,
                listing[run][tag],
                list(data.get(run, {}).get(tag, [])),
                failure=failures.get(run),
                cache_key=(experiment_id, run, tag),
            )
        reports = [entries[run, tag] for run in runs for tag in sorted(listing[run])]
        return {
            "plugin": self.plugin_name,
            "protocol_version": metadata.PROTOCOL_VERSION,
            "reports": reports,
        }

    def report_impl(
        self,
        ctx: Any,
        experiment_id: str,
        run: str | None,
        tag: str | None,
        step: str | int | None = None,
    ) -> dict[str, Any]:
        """Returns one whole report: the latest of `run` and `tag`, or at `step`.

        Args:
            ctx: the request's `RequestContext`.
            experiment_id: the experiment the request is for.
            run: the run's name.
            tag: the summary's tag.
            step: the report's step (an integer, or its decimal text).
                Defaults to `None`, the latest report.

        Returns:
            One entry as in `reports_impl`, with `report`: the document, or
            `None` when it cannot be read (then `error` says why).

        Raises:
            tensorboard.errors.InvalidArgumentError: for a missing or unknown
                run, tag or step (the route answers 400).
        """
        if run is None:
            raise _BadRequest("Missing argument `run`. Expected a run's name.")
        if tag is None:
            raise _BadRequest("Missing argument `tag`. Expected a summary's tag.")
        parsed_step: int | None = None
        if step is not None and step != "":
            try:
                parsed_step = int(step)
            except (TypeError, ValueError):
                raise _BadRequest(
                    f"Invalid value for argument `step`. Expected an integer. "
                    f"Received: step={step!r}"
                ) from None
        listing, _ = _split(self._listing(ctx, experiment_id))
        if run not in listing:
            expected = _names(sorted(listing)) or "none: no run has such reports"
            raise _BadRequest(
                f"Unknown `run`. Expected one of {expected}. Received: run={run!r}"
            )
        if tag not in listing[run]:
            raise _BadRequest(
                f"Unknown `tag` for run {run!r}. Expected one of "
                f"{_names(sorted(listing[run]))}. Received: tag={tag!r}"
            )
        data, failures = self._read(ctx, experiment_id, [run], [tag])
        listed = list(data.get(run, {}).get(tag, []))
        every = None
        if (
            parsed_step is not None
            and run not in failures
            and all(d.step != parsed_step for d in listed)
        ):
            every_data, failures = self._read(
                ctx, experiment_id, [run], [tag], _ALL_STEPS
            )
            every = list(every_data.get(run, {}).get(tag, []))
        return self._entry(
            run,
            tag,
            listing[run][tag],
            listed,
            parsed_step,
            every=every,
            full=True,
            failure=failures.get(run),
        )

    # Routes: parse the request, call an `*_impl`, answer JSON.

    def _respond_json(self, request: wrappers.Request, call: Callable[[], Any]) -> Any:
        try:
            body, code = call(), 200
        except errors.PublicError as error:
            body, code = {"error": str(error)}, error.http_code
        return http_util.Respond(request, body, _JSON, code=code)

    def _serve_reports(self, request: wrappers.Request) -> Any:
        ctx = plugin_util.context(request.environ)
        experiment_id = plugin_util.experiment_id(request.environ)
        return self._respond_json(
            request, lambda: self.reports_impl(ctx, experiment_id)
        )

    def _serve_report(self, request: wrappers.Request) -> Any:
        ctx = plugin_util.context(request.environ)
        experiment_id = plugin_util.experiment_id(request.environ)
        args = request.args
        return self._respond_json(
            request,
            lambda: self.report_impl(
                ctx, experiment_id, args.get("run"), args.get("tag"), args.get("step")
            ),
        )

    # The frontend's files.

    def static_path(self, relative: str) -> str | None:
        """Returns the file that `/static/<relative>` serves, or `None` (a 404).

        Only files directly in `static/` (shared by the plugins) or in this
        plugin's own folder, with a known type, are served: `..`, absolute
        paths, empty segments, backslashes and symbolic links out of the
        folder are refused.

        Args:
            relative: the part of the URL path after `/static/`, decoded.

        Returns:
            An absolute path to an existing file, or `None`.
        """
        parts = relative.split("/")
        if any(
            part in ("", ".", "..") or "\\" in part or "\x00" in part for part in parts
        ):
            return None
        if len(parts) > 2 or (len(parts) == 2 and parts[0] != self.static_folder):
            return None
        root = os.path.realpath(STATIC_ROOT)
        path = os.path.realpath(os.path.join(root, *parts))
        if os.path.commonpath([root, path]) != root or not os.path.isfile(path):
            return None
        if os.path.splitext(path)[1] not in _CONTENT_TYPES:
            return None
        return path

    def _serve_file(self, request: wrappers.Request, relative: str) -> Any:
        path = self.static_path(relative)
        if path is None:
            return http_util.Respond(request, {"error": "Not found."}, _JSON, code=404)
        with open(path, "rb") as file:
            content = file.read()
        content_type = _CONTENT_TYPES[os.path.splitext(path)[1]]
        return http_util.Respond(request, content, content_type)

    def _serve_index(self, request: wrappers.Request) -> Any:
        return self._serve_file(request, f"{self.static_folder}/index.js")

    def _serve_static(self, request: wrappers.Request) -> Any:
        marker = f"/plugin/{self.plugin_name}/static/"
        _, found, relative = request.path.partition(marker)
        return self._serve_file(request, relative if found else "")
