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

Its parts, one concern each: `_decoding` (a stored report to a JSON object,
within limits), `_listing` (what `/reports` lists of each report) and
`_static` (which file a `/static/` path serves).

Nothing here imports Keras, TensorFlow or a backend: TensorBoard imports the
plugins when it starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from tensorboard import errors, plugin_util
from tensorboard.backend import http_util
from tensorboard.data import provider
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from keras_bettermodels.tensorboard import _decoding, _listing, _static, metadata
from keras_bettermodels.tensorboard._decoding import MAX_REPORT_BYTES, MAX_REPORT_DEPTH
from keras_bettermodels.tensorboard._static import STATIC_ROOT

__all__ = ["MAX_REPORT_BYTES", "MAX_REPORT_DEPTH", "STATIC_ROOT", "ReportPlugin"]

_logger = logging.getLogger(__name__)

_JSON = "application/json"
# A step that is not among the sampled ones is looked for among all reports.
_ALL_STEPS = 1_000_000
# Unknown-run messages list at most this many of the runs that exist.
_LISTED_NAMES = 20


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
        # a report without a headline, decoded once.
        self._summaries = _listing.SummaryCache()

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

    def _list_tensors(self, ctx: Any, experiment_id: str) -> _listing.Listing:
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
        downsample: int = _listing.LISTED_STEPS,
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
        `_listing.LISTED_STEPS`, always with the latest); `every` holds all of
        them, when `step` had to be looked for there. `full` adds the whole report;
        `failure` is why the run's reports could not be read, if they could not.
        With `cache_key` (the listing's `(experiment, run, tag)`), the
        report's summary is decoded once and kept, by step and wall time.
        """
        steps = [datum.step for datum in listed]
        entry = _listing.blank_entry(run, tag, steps)
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
            cached = self._summaries.get(key)
            if cached is None:
                cached = self._summary(run, tag, datum)
                self._summaries.put(key, cached)
            entry["bytes"], entry["summary"], entry["error"] = cached
            return entry
        document = self._document(run, tag, datum, entry)
        if document is not None:
            entry["summary"] = _decoding.headline(document, self.headline_fields)
            if full:
                entry["report"] = document
        return entry

    def _document(
        self, run: str, tag: str, datum: provider.TensorDatum, entry: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Decodes the report in `datum`, setting `entry`'s `bytes` (and
        `error`, returning `None`, when it cannot be read)."""
        try:
            raw = _decoding.payload(datum)
            entry["bytes"] = len(raw)
            return _decoding.decode(raw, self.max_report_bytes, self.max_report_depth)
        except _decoding.Unreadable as error:
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

    def _summary(
        self, run: str, tag: str, datum: provider.TensorDatum
    ) -> _listing.Summary:
        """`(bytes, summary, error)` of the report in `datum`, decoded whole."""
        entry: dict[str, Any] = {"bytes": None, "error": None}
        document = self._document(run, tag, datum, entry)
        summary = (
            None
            if document is None
            else _decoding.headline(document, self.headline_fields)
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
            size, fields, complete = _decoding.read_headline(datum)
        except ValueError:
            return None
        if not complete and not all(name in fields for name in self.headline_fields):
            return None
        entry = _listing.blank_entry(
            run, tag, [headline.step for headline in headlines]
        )
        entry.update(step=datum.step, wall_time=datum.wall_time, bytes=size)
        if size > self.max_report_bytes:
            message = _decoding.too_large(size, self.max_report_bytes)
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
        listing, headlines = _listing.split(self._list_tensors(ctx, experiment_id))
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
        listing, _ = _listing.split(self._list_tensors(ctx, experiment_id))
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
        return _static.static_file(relative, self.static_folder)

    def _serve_file(self, request: wrappers.Request, relative: str) -> Any:
        path = self.static_path(relative)
        if path is None:
            return http_util.Respond(request, {"error": "Not found."}, _JSON, code=404)
        with open(path, "rb") as file:
            content = file.read()
        return http_util.Respond(request, content, _static.content_type(path))

    def _serve_index(self, request: wrappers.Request) -> Any:
        return self._serve_file(request, f"{self.static_folder}/index.js")

    def _serve_static(self, request: wrappers.Request) -> Any:
        marker = f"/plugin/{self.plugin_name}/static/"
        _, found, relative = request.path.partition(marker)
        return self._serve_file(request, relative if found else "")
