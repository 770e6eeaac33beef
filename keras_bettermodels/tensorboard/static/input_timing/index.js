// The "Input timing" tab of keras-bettermodels.
//
// Per run, the latest TimingReport: the first epoch split into its compile time
// and the rest (filling the cache, or reading and training), beside a steady
// epoch; a bar per epoch, the cache-filling epoch and the epochs that compiled
// again marked; the steady-state speedup, samples per second, cached or not,
// and the advice. One rule for the scales (docs/tensorboard.md): every run is
// drawn on the same scales; the first-epoch chart, whose parts are stacked, is
// always linear from 0; the epoch chart stacks nothing and is linear from 0
// unless the runs' epochs differ over tenfold, then logarithmic in whole
// decades, its axis titled so. Every string from the data is inserted as text.

import {
  DASH, details, field, finite, h, message, plain, renderTab, s, seconds, text, when,
} from "./static/common.js";

// Fields this tab renders itself; the others show under the stats, by these labels.
const SHOWN = new Set([
  "epoch_times", "epochs", "first_epoch_time", "steady_epoch_time", "compile_time", "speedup",
  "samples_per_second", "cached", "advice", "pipeline", "recompiled_epochs", "recompile_time",
]);
const LABELS = {
  cache: "Cache",
  cache_path: "Cache file",
  prefetched: "Prefetched",
  cache_reused: "Cache reused from an earlier run",
  cache_partial: "Cache only partly filled",
  warmup_epochs: "Warm-up epochs",
  batch_size: "Batch size",
  steps_per_second: "Steady steps / s",
  backend: "Backend",
  input_kind: "Input kind",
  sync_time: "Waited for the device (s)",
};
const CHART = { width: 440, height: 210, left: 64, right: 12, top: 14, bottom: 34 };
const FIRST_CHART = { width: 440, height: 100, left: 92, right: 12, top: 8, bottom: 36, row: 18, gap: 8 };

function median(values) {
  const sorted = values.filter((v) => v !== null).sort((a, b) => a - b);
  if (!sorted.length) return null;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** The per-epoch records (`TimingReport.to_dict()["epochs"]`), or []. */
function epochRecords(report) {
  const epochs = field(report, "epochs");
  return Array.isArray(epochs) ? epochs.map((epoch) => (epoch && typeof epoch === "object" ? epoch : {})) : [];
}

/** Training seconds per epoch: `epoch_times`, or the `time` of each record. */
function epochTimes(report) {
  const times = field(report, "epoch_times");
  if (Array.isArray(times)) return times.map(finite);
  return epochRecords(report).map((epoch) => finite(epoch.time));
}

/** Steady samples per second, and per epoch where the records have it. */
function samplesPerSecond(report) {
  const value = field(report, "samples_per_second");
  if (Array.isArray(value)) {
    const rates = value.map(finite);
    return { overall: median(rates.length > 1 ? rates.slice(1) : rates), perEpoch: rates };
  }
  return {
    overall: finite(value),
    perEpoch: epochRecords(report).map((epoch) => finite(epoch.samples_per_second)),
  };
}

/** Whether the first epoch filled a cache (cached, and not a reused file cache). */
function fillsCache(report) {
  return field(report, "cached") === true && field(report, "cache_reused") !== true;
}

function cachedBadge(cached, kind, inputKind) {
  if (cached === true) {
    const words = typeof kind === "string" && kind ? `cached (${kind})` : "cached";
    return h("span", { class: "band band-great", "data-cached": "true" }, words);
  }
  if (cached === false) return h("span", { class: "band band-check", "data-cached": "false" }, "not cached");
  const words = typeof inputKind === "string" && inputKind && inputKind !== "tf.data"
    ? `not inspected (${inputKind})` : "not inspected";
  return h("span", { class: "band band-none", "data-cached": "unknown" }, words);
}

function speedupText(value) {
  const text = plain(value, 3);
  return text === DASH ? DASH : `${text}\u00d7`;
}

function adviceOf(report) {
  const advice = field(report, "advice");
  if (Array.isArray(advice)) return advice.map((item) => text(item));
  if (advice === undefined) return null;
  return [text(advice)];
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

/** The run's recompiled epochs (`recompiled_epochs`, 0-based), as a Set. */
function recompiledEpochs(report) {
  const epochs = field(report, "recompiled_epochs");
  return new Set(Array.isArray(epochs) ? epochs.filter((epoch) => Number.isInteger(epoch)) : []);
}

/** A linear scale from 0 to a round number at or above `longest`. */
export function linearScale(longest) {
  const top = niceMax(longest);
  return { kind: "linear", ticks: [0, top / 2, top], fraction: (value) => Math.max(0, value) / top };
}

/**
 * The epoch chart's scale, shared by every run: linear from 0 when the
 * epochs (of all runs) are of a size, logarithmic in whole decades when the
 * longest is over LOG_RATIO times the shortest, so a 30 ms epoch stays visible
 * beside a 3 s one. Nothing is stacked on it: a bar's length on a log scale
 * is not its share of anything.
 */
export const LOG_RATIO = 10;
export function epochScale(times) {
  const positive = times.filter((time) => time !== null && time > 0);
  const longest = positive.length ? Math.max(...positive) : 0;
  const shortest = positive.length ? Math.min(...positive) : 0;
  if (shortest > 0 && longest / shortest > LOG_RATIO) {
    // The baseline is a decade at least three times below the shortest epoch,
    // so that no bar is a sliver for sitting just above a decade.
    const low = 10 ** Math.floor(Math.log10(shortest / 3));
    const high = 10 ** Math.ceil(Math.log10(longest));
    const ticks = [];
    for (let tick = low; tick <= high * 1.0001; tick *= 10) ticks.push(tick);
    return {
      kind: "log", ticks,
      fraction: (value) => (value > low
        ? Math.min(1, Math.log10(value / low) / Math.log10(high / low)) : 0),
    };
  }
  return linearScale(longest);
}

/**
 * The first epoch's stacked parts, in seconds: `compile` (the compile time,
 * at most the epoch) then the rest, `fill` when the epoch filled a cache,
 * else `rest` (reading and training). [] without a first epoch.
 */
export function firstEpochParts(report) {
  const first = finite(field(report, "first_epoch_time")) ?? epochTimes(report)[0] ?? null;
  if (first === null || !(first > 0)) return [];
  const compile = finite(field(report, "compile_time"));
  const shown = compile === null ? 0 : Math.min(Math.max(compile, 0), first);
  const parts = [{ part: "compile", seconds: shown }, { part: fillsCache(report) ? "fill" : "rest", seconds: first - shown }];
  return parts.filter((part) => part.seconds > 0);
}

/** The scales every card draws on: one for the epoch charts, one for the first-epoch charts. */
export function sharedScales(reports) {
  const times = [];
  let longestFirst = 0;
  for (const report of reports) {
    if (!report || typeof report !== "object") continue;
    times.push(...epochTimes(report));
    const parts = firstEpochParts(report);
    const first = parts.reduce((sum, part) => sum + part.seconds, 0);
    const steady = finite(field(report, "steady_epoch_time"));
    longestFirst = Math.max(longestFirst, first, steady !== null && steady > 0 ? steady : 0);
  }
  return { epochs: epochScale(times), first: linearScale(longestFirst) };
}

function axisTitle(axis, x, y, words) {
  const attrs = { class: "axis-title", "data-axis": axis, x, y, "text-anchor": "middle" };
  if (axis === "y") attrs.transform = `rotate(-90 ${x} ${y})`;
  return s("text", attrs, words);
}

const PART_WORDS = { compile: "compile / tracing", fill: "fills the cache", rest: "reading and training" };
const PART_COLORS = { compile: "var(--compile)", fill: "var(--fill)", rest: "var(--bar)" };

/**
 * The first epoch as stacked horizontal parts (compile, then filling the cache
 * or the rest) above a steady epoch, on the shared linear scale from 0: each
 * part's length is its share of the epoch.
 */
function firstEpochChart(report, scale) {
  const { width, height, left, right, top, bottom, row, gap } = FIRST_CHART;
  const plotWidth = width - left - right;
  const x = (value) => left + scale.fraction(value) * plotWidth;
  const base = height - bottom;
  const svg = s("svg", {
    class: "chart first-epoch", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": "The first epoch's parts and a steady epoch, in seconds (linear scale)",
    "data-scale": scale.kind,
  });
  scale.ticks.forEach((value, index) => {
    svg.appendChild(s("line", { class: "axis", x1: x(value), x2: x(value), y1: top, y2: base, "stroke-opacity": index ? 0.25 : 1 }));
    svg.appendChild(s("text", { class: "tick", x: x(value), y: base + 14, "text-anchor": "middle" }, seconds(value)));
  });
  const rows = [["first epoch", firstEpochParts(report)]];
  const steady = finite(field(report, "steady_epoch_time"));
  rows.push(["steady epoch", steady !== null && steady > 0 ? [{ part: "steady", seconds: steady }] : []]);
  rows.forEach(([label, parts], index) => {
    const y = top + index * (row + gap);
    svg.appendChild(s("text", { x: left - 6, y: y + row / 2 + 4, "text-anchor": "end" }, label));
    if (!parts.length) {
      svg.appendChild(s("text", { x: left + 4, y: y + row / 2 + 4, class: "muted" }, DASH));
      return;
    }
    const total = parts.reduce((sum, part) => sum + part.seconds, 0);
    let start = 0;
    for (const part of parts) {
      const words = part.part === "steady" ? "steady epoch" : PART_WORDS[part.part];
      const share = part.part === "steady" ? "" : ` (${Math.round((100 * part.seconds) / total)} % of the epoch)`;
      svg.appendChild(s("rect", {
        class: `segment ${part.part}`, x: x(start), y, width: Math.max(0, x(start + part.seconds) - x(start)),
        height: row, fill: PART_COLORS[part.part] ?? "var(--bar)", "data-seconds": part.seconds,
        "data-part": part.part,
      }, s("title", null, `${words}: ${seconds(part.seconds)}${share}`)));
      start += part.seconds;
    }
  });
  svg.appendChild(axisTitle("x", left + plotWidth / 2, height - 4, "seconds"));
  return svg;
}

/** The bar chart of one run's epoch times, on the shared scale; nothing stacked. */
function chart(report, scale) {
  const times = epochTimes(report);
  const { width, height, left, right, top, bottom } = CHART;
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const y = (value) => top + plotHeight - scale.fraction(value) * plotHeight;
  const base = top + plotHeight;
  const fills = fillsCache(report);
  const steady = finite(field(report, "steady_epoch_time"));
  const compile = finite(field(report, "compile_time"));
  const recompiled = recompiledEpochs(report);
  const rates = samplesPerSecond(report).perEpoch;
  const records = epochRecords(report);
  const svg = s("svg", {
    class: "chart epochs", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `Epoch times in seconds (${scale.kind} scale)`, "data-scale": scale.kind,
  });
  // Axes and ticks.
  scale.ticks.forEach((value, index) => {
    svg.appendChild(s("line", { class: "axis", x1: left, x2: width - right, y1: y(value), y2: y(value), "stroke-opacity": index ? 0.25 : 1 }));
    svg.appendChild(s("text", { class: "tick", x: left - 6, y: y(value) + 4, "text-anchor": "end" }, seconds(value)));
  });
  svg.appendChild(axisTitle("y", 12, top + plotHeight / 2,
    scale.kind === "log" ? "seconds (log scale)" : "seconds"));
  svg.appendChild(axisTitle("x", left + plotWidth / 2, height - 4, "epoch"));
  if (!times.length) {
    svg.appendChild(s("text", { x: left + plotWidth / 2, y: top + plotHeight / 2, "text-anchor": "middle" }, "no epoch times"));
    return svg;
  }
  const slot = plotWidth / times.length;
  const barWidth = Math.max(2, Math.min(48, slot * 0.7));
  const labelEvery = Math.ceil(times.length / 12);
  times.forEach((time, index) => {
    const x = left + slot * index + (slot - barWidth) / 2;
    const filling = index === 0 && fills;
    const epochNumber = Number.isInteger(records[index]?.epoch) ? records[index].epoch : index;
    const again = recompiled.has(epochNumber);
    const value = time === null ? 0 : time;
    const parts = [`epoch ${index + 1}: ${seconds(time)}`];
    if (filling) parts.push("fills the cache");
    if (again) parts.push("compiled again: left out of the steady epoch");
    if (index === 0 && compile !== null) parts.push(`of which compile ${seconds(compile)}`);
    if (rates[index] !== undefined && rates[index] !== null) parts.push(`${plain(rates[index])} samples/s`);
    const kind = filling ? "bar fill" : again ? "bar recompiled" : "bar";
    const color = filling ? "var(--fill)" : again ? "var(--compile)" : "var(--bar)";
    svg.appendChild(s("rect", {
      class: kind, x, width: barWidth, y: y(value),
      height: Math.max(0, base - y(value)), fill: color,
      "data-epoch": index + 1, "data-seconds": time === null ? "" : time,
      "data-recompiled": again ? "true" : "false",
    }, s("title", null, parts.join(", "))));
    if (index % labelEvery === 0 || again) {
      svg.appendChild(s("text", { x: x + barWidth / 2, y: base + 14, "text-anchor": "middle" },
        again ? `${index + 1}*` : String(index + 1)));
    }
  });
  if (steady !== null) {
    svg.appendChild(s("line", {
      class: "steady", x1: left, x2: width - right, y1: y(steady), y2: y(steady),
      stroke: "var(--steady)", "stroke-dasharray": "5 4", "stroke-width": 1.5,
    }, s("title", null, `steady epoch: ${seconds(steady)}`)));
  }
  return svg;
}

function chartLegend(fills, recompiled) {
  const swatch = (color, label, dashed = false) => h("span", { class: "muted" },
    (() => {
      const icon = s("svg", { width: 14, height: 10, "aria-hidden": "true" },
        dashed
          ? s("line", { x1: 0, x2: 14, y1: 5, y2: 5, stroke: color, "stroke-dasharray": "4 2", "stroke-width": 2 })
          : s("rect", { width: 14, height: 10, fill: color }));
      return icon;
    })(), ` ${label}  `);
  return h("p", { class: "chart-legend" },
    swatch("var(--bar)", "epoch"),
    fills ? swatch("var(--fill)", "filling the cache") : null,
    swatch("var(--compile)", recompiled ? "compile time; * compiled again" : "compile time"),
    swatch("var(--steady)", "steady epoch", true));
}

/** "epoch 2 (+1.16 s)", "none", or a dash for a report without the field. */
function recompiledText(report) {
  if (field(report, "recompiled_epochs") === undefined) return DASH;
  const epochs = [...recompiledEpochs(report)];
  if (!epochs.length) return "none";
  const extra = finite(field(report, "recompile_time"));
  const names = `epoch${epochs.length > 1 ? "s" : ""} ${epochs.map((epoch) => epoch + 1).join(", ")}`;
  return extra === null ? names : `${names} (+${seconds(extra)})`;
}

function pipelineDetails(pipeline) {
  if (!pipeline || typeof pipeline !== "object") return null;
  const list = details(pipeline, new Set());
  return list ? h("details", { class: "pipeline" }, h("summary", { class: "muted" }, "Input pipeline"), list) : null;
}

function stat(label, value, name) {
  return h("div", { class: "stat" }, h("span", { class: "label" }, label),
    h("span", { class: "value", "data-field": name }, value));
}

function card(entry, scales) {
  const report = entry.report;
  const header = h("header", null, h("h2", { class: "run" }, text(entry.run)), h("span", { class: "tag" }, text(entry.tag)));
  const attrs = { class: "card", "data-run": entry.run, "data-tag": entry.tag };
  if (entry.error) return h("section", attrs, header, message(entry.error, "error"));
  if (!report || typeof report !== "object") return h("section", attrs, header, message("This report is empty.", "error"));
  const cached = field(report, "cached");
  const advice = adviceOf(report);
  return h(
    "section",
    attrs,
    header,
    h("div", { class: "stats" },
      stat("Input", cachedBadge(cached, field(report, "cache"), field(report, "input_kind")), "cached"),
      stat("Steady-state speedup", speedupText(field(report, "speedup")), "speedup"),
      stat("Samples / s", plain(samplesPerSecond(report).overall), "samples_per_second"),
      stat("First epoch", seconds(field(report, "first_epoch_time")), "first_epoch_time"),
      stat("Steady epoch", seconds(field(report, "steady_epoch_time")), "steady_epoch_time"),
      stat("Compile", seconds(field(report, "compile_time")), "compile_time"),
      stat("Compiled again", recompiledText(report), "recompiled_epochs")),
    firstEpochChart(report, scales.first),
    chart(report, scales.epochs),
    chartLegend(fillsCache(report), recompiledEpochs(report).size > 0),
    h("div", { class: "advice-block" }, h("strong", null, "Advice"),
      advice === null ? h("p", { class: "muted" }, DASH)
        : advice.length ? h("ul", { class: "advice" }, advice.map((item) => h("li", null, item)))
          : h("p", { class: "muted" }, "none")),
    details(report, SHOWN, LABELS),
    pipelineDetails(field(report, "pipeline")),
    h("p", { class: "muted" }, `Step ${entry.step ?? DASH}, written ${when(entry.wall_time)}`),
  );
}

function comparison(entries) {
  const rows = entries.map((entry) => {
    const report = entry.report && typeof entry.report === "object" && !entry.error ? entry.report : null;
    const cell = (value) => h("td", { class: "num" }, value);
    if (entry.error) {
      return h("tr", { "data-run": entry.run }, h("td", { class: "name" }, text(entry.run)),
        h("td", { colspan: 6, class: "muted" }, entry.error));
    }
    return h("tr", { "data-run": entry.run },
      h("td", { class: "name" }, text(entry.run)),
      h("td", null, report ? cachedBadge(field(report, "cached"), field(report, "cache"), field(report, "input_kind")) : DASH),
      cell(report ? speedupText(field(report, "speedup")) : DASH),
      cell(report ? seconds(field(report, "first_epoch_time")) : DASH),
      cell(report ? seconds(field(report, "steady_epoch_time")) : DASH),
      cell(report ? seconds(field(report, "compile_time")) : DASH),
      cell(report ? plain(samplesPerSecond(report).overall) : DASH));
  });
  return h("table", { class: "comparison" },
    h("thead", null, h("tr", null, ["Run", "Input", "Speedup", "First epoch", "Steady epoch", "Compile", "Samples / s"]
      .map((name, index) => h("th", { class: index > 1 ? "num" : null }, name)))),
    h("tbody", null, rows));
}

export async function render() {
  await renderTab("Input timing",
    "Training time per epoch. The first epoch pays for tracing (compile) and, with a cache, " +
    "for filling it; speedup = (first epoch \u2212 compile) / steady epoch, so an uncached " +
    "pipeline reads about 1\u00d7. Every run is drawn on the same scales, in seconds.",
    fill);
}

async function fill(main, status, entries) {
  if (!entries.length) {
    status.replaceWith(message(
      "No timing reports in this log directory yet. Pass log_dir= to " +
      "CacheTimingCallback (keras_bettermodels.callbacks) and point TensorBoard at it."));
    return;
  }
  status.replaceWith(comparison(entries));
  const scales = sharedScales(entries.filter((entry) => !entry.error).map((entry) => entry.report));
  main.appendChild(h("div", { class: "cards" }, entries.map((entry) => card(entry, scales))));
}
