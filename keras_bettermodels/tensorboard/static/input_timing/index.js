// The "Input timing" tab of keras-bettermodels.
//
// Per run, the latest TimingReport: a bar chart of the epoch times with the
// cache-filling epoch, the compile time and the epochs that compiled again
// marked, the steady-state speedup, samples per second, cached or not, and the
// advice. Each run has its own time scale (logarithmic when its epochs differ
// over tenfold, so a 30 ms epoch shows beside a 3 s one); the table above the
// runs compares them in numbers. Every string from the data is inserted as text.

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
};
const CHART = { width: 440, height: 200, left: 52, right: 12, top: 14, bottom: 34 };

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

function cachedBadge(cached, kind) {
  if (cached === true) {
    const words = typeof kind === "string" && kind ? `cached (${kind})` : "cached";
    return h("span", { class: "band band-great", "data-cached": "true" }, words);
  }
  if (cached === false) return h("span", { class: "band band-check", "data-cached": "false" }, "not cached");
  return h("span", { class: "band band-none", "data-cached": "unknown" }, "not inspected");
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

/**
 * The run's own vertical scale: linear from 0 when its epochs are of a size,
 * logarithmic (whole decades) when the longest is over LOG_RATIO times the
 * shortest, so a 30 ms epoch stays visible beside a 3 s first epoch.
 */
const LOG_RATIO = 10;
function scaleFor(times) {
  const positive = times.filter((time) => time !== null && time > 0);
  const longest = positive.length ? Math.max(...positive) : 0;
  const shortest = positive.length ? Math.min(...positive) : 0;
  if (shortest > 0 && longest / shortest > LOG_RATIO) {
    const low = 10 ** Math.floor(Math.log10(shortest));
    const high = 10 ** Math.ceil(Math.log10(longest));
    const ticks = [];
    for (let tick = low; tick <= high * 1.0001; tick *= 10) ticks.push(tick);
    return {
      kind: "log", ticks,
      fraction: (value) => (value > low
        ? Math.min(1, Math.log10(value / low) / Math.log10(high / low)) : 0),
    };
  }
  const top = niceMax(longest);
  return { kind: "linear", ticks: [0, top / 2, top], fraction: (value) => Math.max(0, value) / top };
}

/** The bar chart of one run's epoch times, on the run's own scale. */
function chart(report) {
  const times = epochTimes(report);
  const { width, height, left, right, top, bottom } = CHART;
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const scale = scaleFor(times);
  const y = (value) => top + plotHeight - scale.fraction(value) * plotHeight;
  const base = top + plotHeight;
  const fills = fillsCache(report);
  const compile = finite(field(report, "compile_time"));
  const steady = finite(field(report, "steady_epoch_time"));
  const recompiled = recompiledEpochs(report);
  const rates = samplesPerSecond(report).perEpoch;
  const records = epochRecords(report);
  const svg = s("svg", {
    class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `Epoch times (${scale.kind} scale)`, "data-scale": scale.kind,
  });
  // Axes and ticks.
  scale.ticks.forEach((value, index) => {
    svg.appendChild(s("line", { class: "axis", x1: left, x2: width - right, y1: y(value), y2: y(value), "stroke-opacity": index ? 0.25 : 1 }));
    svg.appendChild(s("text", { x: left - 6, y: y(value) + 4, "text-anchor": "end" }, seconds(value)));
  });
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
    const bar = s("rect", {
      class: kind, x, width: barWidth, y: y(value),
      height: Math.max(0, base - y(value)), fill: color,
      "data-epoch": index + 1, "data-seconds": time === null ? "" : time,
      "data-recompiled": again ? "true" : "false",
    }, s("title", null, parts.join(", ")));
    svg.appendChild(bar);
    if (index === 0 && compile !== null) {
      const shown = Math.min(compile, value);
      svg.appendChild(s("rect", {
        class: "compile", x, width: barWidth, y: y(shown), height: Math.max(0, base - y(shown)),
        fill: "var(--compile)", "data-seconds": compile,
      }, s("title", null, `compile / tracing: ${seconds(compile)}`)));
    }
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
  const axisName = scale.kind === "log" ? "epoch (time on a log scale)" : "epoch";
  svg.appendChild(s("text", { x: left + plotWidth / 2, y: height - 4, "text-anchor": "middle" }, axisName));
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
    fills ? swatch("var(--fill)", "cache-filling epoch") : null,
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

function card(entry) {
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
      stat("Input", cachedBadge(cached, field(report, "cache")), "cached"),
      stat("Steady-state speedup", speedupText(field(report, "speedup")), "speedup"),
      stat("Samples / s", plain(samplesPerSecond(report).overall), "samples_per_second"),
      stat("First epoch", seconds(field(report, "first_epoch_time")), "first_epoch_time"),
      stat("Steady epoch", seconds(field(report, "steady_epoch_time")), "steady_epoch_time"),
      stat("Compile", seconds(field(report, "compile_time")), "compile_time"),
      stat("Compiled again", recompiledText(report), "recompiled_epochs")),
    chart(report),
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
      h("td", null, report ? cachedBadge(field(report, "cached"), field(report, "cache")) : DASH),
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
    "pipeline reads about 1\u00d7.",
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
  main.appendChild(h("div", { class: "cards" }, entries.map((entry) => card(entry))));
}
