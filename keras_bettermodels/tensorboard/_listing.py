"""What `/reports` lists of each report, before and after reading it (private).

The data provider lists every tag under a plugin's name: the reports and,
beside each, its headline (`metadata.headline_of` names the report a headline
belongs to). `split` tells them apart; `blank_entry` is one report's entry in
the listing before anything was read of it; `SummaryCache` keeps what the
listing shows of the reports that had to be decoded whole (logs written before
headlines were). Nothing here imports Keras, TensorFlow or a backend.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Mapping
from typing import Any

from tensorboard.data import provider

from keras_bettermodels.tensorboard import metadata

__all__ = [
    "CACHED_SUMMARIES",
    "LISTED_STEPS",
    "Headlines",
    "Listing",
    "Summary",
    "SummaryCache",
    "blank_entry",
    "split",
]

# TensorBoard keeps 10 reports per run and tag unless told otherwise
# (`--samples_per_plugin`). Listings read at most this many, evenly sampled and
# always with the latest: the fast loader sends every report it reads over
# gRPC, and a long run with `--samples_per_plugin=<name>=1000` would otherwise
# send all of them (30 MB for 200-variable reports) for every page view.
LISTED_STEPS = 100
# Summaries of reports without a headline, decoded once: at most this many are
# kept (a few hundred bytes each).
CACHED_SUMMARIES = 4096

# run -> tag -> series, as the data provider lists them.
Listing = Mapping[str, Mapping[str, provider.TensorTimeSeries]]
# run -> report tag -> (the tag of its headline, the headline's series)
Headlines = dict[str, dict[str, tuple[str, provider.TensorTimeSeries]]]
# What the listing shows of one report: `bytes`, `summary`, `error`.
Summary = tuple[int | None, dict[str, Any] | None, str | None]


def split(listing: Listing) -> tuple[Listing, Headlines]:
    """Splits the data provider's listing into reports and their headlines.

    Returns:
        `(reports, headlines)`: run -> tag -> series of the reports, and run
        -> report tag -> `(headline tag, headline series)`.
    """
    reports: dict[str, dict[str, provider.TensorTimeSeries]] = {}
    headlines: Headlines = {}
    for run, tags in listing.items():
        for tag, series in tags.items():
            of = metadata.headline_of(series.plugin_content)
            if of is None:
                reports.setdefault(run, {})[tag] = series
            else:
                headlines.setdefault(run, {})[of] = (tag, series)
    return reports, headlines


def blank_entry(run: str, tag: str, steps: list[int]) -> dict[str, Any]:
    """A listing's entry for one report, before anything was read of it."""
    return {
        "run": run,
        "tag": tag,
        "steps": steps,
        "steps_sampled": len(steps) >= LISTED_STEPS,
        "step": None,
        "wall_time": None,
        "bytes": None,
        "summary": None,
        "error": None,
    }


class SummaryCache:
    """The latest `size` summaries by key, least recently used dropped first.

    Thread-safe: TensorBoard serves requests from several threads.

    Args:
        size: how many summaries to keep. Defaults to `CACHED_SUMMARIES`.
    """

    def __init__(self, size: int = CACHED_SUMMARIES) -> None:
        self.size = size
        self._items: collections.OrderedDict[tuple[Any, ...], Summary] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> Summary | None:
        """Returns the summary kept under `key`, or `None`."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[Any, ...], summary: Summary) -> None:
        """Keeps `summary` under `key`, dropping the least recently used."""
        with self._lock:
            self._items[key] = summary
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Forgets every summary."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
