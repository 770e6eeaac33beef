// The "Training health" tab of keras-bettermodels.
//
// Per run, the latest `TrainingHealth` report: its findings on top (code,
// layer, step, message), then a table of the layers, in forward order, by the
// ten statistics at one sampled step (a selector, the latest by default), each
// cell with a sparkline of that statistic over the sampled steps, and the loss
// over the steps with its spikes marked. Every string from the data is
// inserted as text. The pure helpers are exported for the Node tests.

import {
  DASH, details, field, finite, h, message, num, plain, renderTab, s, sci, text, when,
} from "./static/common.js";

// The format of `HealthReport.to_dict()` this tab reads.
export const REPORT_VERSION = 1;
// The statistics of a row, in table order (`health.report.STATISTICS`).
export const STATISTICS = [
  "grad_norm", "update_ratio", "weight_norm", "activation_abs_max", "activation_min_nonzero",
  "gradient_abs_max", "gradient_min_nonzero", "dead_fraction", "activation_underflow",
  "gradient_underflow",
];
// Shares, shown as percentages.
const FRACTIONS = new Set(["dead_fraction", "activation_underflow", "gradient_underflow"]);
// Column heads and their explanations.
const HEADS = {
  grad_norm: ["\u2016g\u2016", "The L2 norm of the loss's gradient for the layer's trainable weights"],
  update_ratio: ["\u2016\u0394W\u2016 / \u2016W\u2016", "The last step's update relative to the weights"],
  weight_norm: ["\u2016W\u2016", "The L2 norm of the layer's trainable weights"],
  activation_abs_max: ["act |max|", "The largest |value| of the layer's outputs"],
  activation_min_nonzero: ["act |min|\u22600", "The smallest non-zero |value| of the layer's outputs"],
  gradient_abs_max: ["grad |max|", "The largest |value| of the gradient"],
  gradient_min_nonzero: ["grad |min|\u22600", "The smallest non-zero |value| of the gradient"],
  dead_fraction: ["dead", "The share of units that are 0 on every sample of the batch"],
  activation_underflow: ["act < 2\u207b\u00b2\u2074", "The share of non-zero outputs below float16's smallest subnormal"],
  gradient_underflow: ["grad < 2\u207b\u00b2\u2074", "The share of non-zero gradient values below float16's smallest subnormal"],
};
// The statistics each finding is about, and its colour band.
const FINDINGS = {
  "float16-overflow": { band: "bug", statistics: ["activation_abs_max", "gradient_abs_max"] },
  "exploding-gradients": { band: "bug", statistics: ["grad_norm"] },
  "float16-underflow": { band: "check", statistics: ["activation_underflow", "gradient_underflow"] },
  "dead-units": { band: "check", statistics: ["dead_fraction"] },
  "vanishing-gradients": { band: "check", statistics: ["grad_norm"] },
  "loss-spike": { band: "check", statistics: [] },
};
// Fields this tab renders itself; the others show under the table.
const SHOWN = new Set([
  "version", "policy", "num_findings", "num_steps", "statistics", "layers", "steps", "rows",
  "findings", "losses",
]);
// A sparkline draws at most this many points (an even sample, with the last).
export const SPARK_POINTS = 200;
const SPARK = { width: 72, height: 18 };
const LOSS = { width: 440, height: 90, left: 44, right: 8, top: 8, bottom: 22 };

const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
const stepOf = (value) => {
  const n = finite(value);
  return n !== null && Number.isInteger(n) ? n : null;
};

/** The statistics to show: the report's names (strings), else the default ones. */
export function statisticsOf(report) {
  const given = field(report, "statistics");
  const names = Array.isArray(given) ? given.filter((name) => typeof name === "string") : [];
  return names.length ? [...new Set(names)] : [...STATISTICS];
}

/** The rows that are objects with an integer step and a layer. */
function rowsOf(report) {
  const rows = field(report, "rows");
  if (!Array.isArray(rows)) return [];
  return rows.filter((row) => isObject(row) && stepOf(row.step) !== null && row.layer !== undefined);
}

/** The layers, as text: the report's order, then any layer only its rows name. */
export function layersOf(report) {
  const given = field(report, "layers");
  const names = (Array.isArray(given) ? given : []).map((layer) => text(layer));
  for (const row of rowsOf(report)) names.push(text(row.layer));
  return [...new Set(names)];
}

/** The sampled steps, ascending: the report's, and any step its rows have. */
export function stepsOf(report) {
  const given = field(report, "steps");
  const steps = (Array.isArray(given) ? given : []).map(stepOf).filter((step) => step !== null);
  for (const row of rowsOf(report)) steps.push(stepOf(row.step));
  return [...new Set(steps)].sort((a, b) => a - b);
}

/** Layer -> the row at `step` (the last one given for a layer and step). */
export function tableAt(report, step) {
  const table = {};
  for (const row of rowsOf(report)) {
    if (stepOf(row.step) === step) table[text(row.layer)] = row;
  }
  return table;
}

/** Layer -> statistic -> its values over `steps` (null where not measured). */
export function seriesOf(report, steps = stepsOf(report), statistics = statisticsOf(report)) {
  const index = new Map(steps.map((step, i) => [step, i]));
  const series = {};
  for (const row of rowsOf(report)) {
    const at = index.get(stepOf(row.step));
    if (at === undefined) continue;
    const layer = text(row.layer);
    if (!Object.prototype.hasOwnProperty.call(series, layer)) {
      series[layer] = Object.fromEntries(statistics.map((name) => [name, steps.map(() => null)]));
    }
    for (const name of statistics) series[layer][name][at] = num(row[name]);
  }
  return series;
}

/** A statistic as text: shares in %, the rest as `sci`; "—" if not measured. */
export function formatStat(name, value) {
  const n = num(value);
  if (n === null) return DASH;
  if (FRACTIONS.has(name) && Number.isFinite(n)) {
    if (n === 0) return "0%";
    return `${Number((n * 100).toPrecision(3))}%`;
  }
  return sci(n);
}

/** The colour band of a finding's code ("none" for a code this tab does not know). */
export function bandOf(code) {
  return Object.prototype.hasOwnProperty.call(FINDINGS, code) ? FINDINGS[code].band : "none";
}

/**
 * A sparkline's points: `values` (numbers or null) scaled into `width` x
 * `height`, at most `SPARK_POINTS` of them. Runs of finite values become
 * segments (a gap at each missing or non-finite value); `flags` lists the
 * indices of the non-finite ones, drawn as marks at the top.
 */
export function sparkline(values, width = SPARK.width, height = SPARK.height) {
  const count = values.length;
  let picked = [...values.keys()];
  if (count > SPARK_POINTS) {
    picked = Array.from({ length: SPARK_POINTS }, (_, i) => Math.round((i * (count - 1)) / (SPARK_POINTS - 1)));
  }
  const shown = picked.filter((i) => finite(values[i]) !== null).map((i) => values[i]);
  const low = shown.length ? Math.min(...shown) : 0;
  const high = shown.length ? Math.max(...shown) : 0;
  const x = (i) => (count > 1 ? (i / (count - 1)) * width : width / 2);
  const y = (v) => (high > low ? height - ((v - low) / (high - low)) * height : height / 2);
  const segments = [];
  const flags = [];
  let current = [];
  for (const i of picked) {
    const value = num(values[i]);
    if (value !== null && Number.isFinite(value)) {
      current.push([Number(x(i).toFixed(2)), Number(y(value).toFixed(2))]);
      continue;
    }
    if (value !== null) flags.push(i);
    if (current.length) segments.push(current);
    current = [];
  }
  if (current.length) segments.push(current);
  return { segments, flags, low, high, x };
}

function sparkSvg(name, values, selected) {
  const { segments, flags, low, high, x } = sparkline(values);
  const { width, height } = SPARK;
  const svg = s("svg", {
    class: "spark",
    width: width + 4,
    height: height + 4,
    viewBox: `-2 -2 ${width + 4} ${height + 4}`,
    "aria-hidden": "true",
    "data-points": String(values.filter((v) => v !== null).length),
  });
  svg.appendChild(s("title", null, `${text(name)}: ${formatStat(name, low)} \u2013 ${formatStat(name, high)}`));
  for (const points of segments) {
    if (points.length === 1) {
      svg.appendChild(s("circle", { class: "spark-point", cx: points[0][0], cy: points[0][1], r: 1.2 }));
    } else {
      svg.appendChild(s("polyline", { class: "spark-line", points: points.map((p) => p.join(",")).join(" ") }));
    }
  }
  for (const i of flags) {
    svg.appendChild(s("circle", { class: "spark-flag", cx: x(i).toFixed(2), cy: 0, r: 1.8 }));
  }
  if (selected !== null && selected >= 0 && values.length > 1) {
    svg.appendChild(s("line", { class: "spark-now", x1: x(selected), x2: x(selected), y1: 0, y2: height }));
  }
  return svg;
}

/** Layer -> statistics flagged by a finding made at or before `step`. */
function flagged(findings, step) {
  const flags = new Map();
  for (const finding of findings) {
    const rule = FINDINGS[finding.code];
    const at = stepOf(finding.step);
    if (!rule || typeof finding.layer !== "string" || (at !== null && at > step)) continue;
    const names = flags.get(finding.layer) || new Map();
    for (const name of rule.statistics) names.set(name, rule.band);
    flags.set(finding.layer, names);
  }
  return flags;
}

function findingsOf(report) {
  const given = field(report, "findings");
  return (Array.isArray(given) ? given : []).filter(isObject);
}

function findingList(findings) {
  if (!findings.length) return message("No finding: every layer's signal looks sound.");
  return h(
    "ul",
    { class: "findings" },
    findings.map((finding) => {
      const code = typeof finding.code === "string" ? finding.code : text(finding.code);
      const band = bandOf(code);
      const layer = finding.layer === null || finding.layer === undefined ? null : text(finding.layer);
      const value = num(finding.value);
      return h(
        "li",
        { class: `finding band-${band}`, "data-code": code, "data-layer": layer },
        h("span", { class: `band band-${band}` }, code),
        " ",
        layer === null ? h("span", { class: "muted" }, "the loss") : h("code", { class: "layer" }, layer),
        ` at step ${stepOf(finding.step) === null ? DASH : stepOf(finding.step)}`,
        value === null ? null : h("span", { class: "muted" }, ` (${sci(value)})`),
        ": ",
        h("span", { class: "finding-message" }, text(finding.message)),
      );
    }),
  );
}

function healthTable(report, step, steps, layers, statistics, series) {
  const table = tableAt(report, step);
  const flags = flagged(findingsOf(report), step);
  const selected = steps.indexOf(step);
  return h(
    "table",
    { class: "health", "data-step": String(step) },
    h("thead", null, h("tr", null, h("th", null, "Layer"), h("th", { class: "num" }, "Params"),
      statistics.map((name) => {
        const [head, title] = Object.prototype.hasOwnProperty.call(HEADS, name) ? HEADS[name] : [name, name];
        return h("th", { class: "num", title, "data-stat": name }, head);
      }))),
    h(
      "tbody",
      null,
      layers.map((layer) => {
        const row = table[layer] || {};
        const marks = flags.get(layer) || new Map();
        return h(
          "tr",
          { "data-layer": layer, "data-flagged": marks.size ? "true" : null },
          h("td", { class: "name" }, layer),
          h("td", { class: "num" }, plain(row.params)),
          statistics.map((name) => {
            const band = marks.get(name);
            const values = series[layer] ? series[layer][name] : [];
            return h(
              "td",
              { class: `num stat${band ? ` flag band-${band}` : ""}`, "data-stat": name },
              h("span", { class: "value-text" }, formatStat(name, row[name])),
              values.length > 1 ? sparkSvg(name, values, selected) : null,
            );
          }),
        );
      }),
    ),
  );
}

function lossChart(report) {
  const given = field(report, "losses");
  const points = (Array.isArray(given) ? given : [])
    .filter((pair) => Array.isArray(pair) && stepOf(pair[0]) !== null && finite(pair[1]) !== null)
    .map((pair) => [stepOf(pair[0]), finite(pair[1])]);
  if (points.length < 2) return null;
  const { width, height, left, right, top, bottom } = LOSS;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const steps = points.map((p) => p[0]);
  const losses = points.map((p) => p[1]);
  const [x0, x1] = [Math.min(...steps), Math.max(...steps)];
  const [y0, y1] = [Math.min(...losses), Math.max(...losses)];
  const x = (step) => left + (x1 > x0 ? ((step - x0) / (x1 - x0)) * plotW : plotW / 2);
  const y = (loss) => top + (y1 > y0 ? plotH - ((loss - y0) / (y1 - y0)) * plotH : plotH / 2);
  const spikes = new Set(findingsOf(report).filter((f) => f.code === "loss-spike").map((f) => stepOf(f.step)));
  const sampled = points.length > SPARK_POINTS * 2
    ? Array.from({ length: SPARK_POINTS * 2 }, (_, i) => points[Math.round((i * (points.length - 1)) / (SPARK_POINTS * 2 - 1))])
    : points;
  return s(
    "svg",
    { class: "chart loss", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Loss by step" },
    s("line", { class: "axis", x1: left, x2: left, y1: top, y2: top + plotH }),
    s("line", { class: "axis", x1: left, x2: left + plotW, y1: top + plotH, y2: top + plotH }),
    s("text", { class: "tick", x: left - 4, y: top + 8, "text-anchor": "end" }, sci(y1, 3)),
    s("text", { class: "tick", x: left - 4, y: top + plotH, "text-anchor": "end" }, sci(y0, 3)),
    s("text", { class: "axis-title", "data-axis": "x", x: left + plotW / 2, y: height - 4, "text-anchor": "middle" },
      `step (${x0}\u2013${x1})`),
    s("polyline", { class: "loss-line", points: sampled.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(" ") }),
    points.filter(([step]) => spikes.has(step)).map(([step, loss]) =>
      s("circle", { class: "spike", cx: x(step).toFixed(1), cy: y(loss).toFixed(1), r: 3.5, "data-step": String(step) },
        s("title", null, `loss spike at step ${step}: ${sci(loss)}`))),
  );
}

function reportView(entry) {
  const report = entry.report;
  if (entry.error) return [message(entry.error, "error")];
  if (!isObject(report)) return [message("This report is empty.", "error")];
  const version = num(report.version);
  if (version !== null && version > REPORT_VERSION) {
    return [message(
      `This report's format version is ${version}, newer than the ${REPORT_VERSION} this ` +
      "keras-bettermodels reads. Upgrade keras-bettermodels to read it.", "error")];
  }
  const findings = findingsOf(report);
  const steps = stepsOf(report);
  const layers = layersOf(report);
  const statistics = statisticsOf(report);
  const stat = (label, name, value) => h("div", { class: "stat" }, h("span", { class: "label" }, label),
    h("span", { class: "value", "data-field": name }, value));
  const numFindings = num(report.num_findings);
  const overall = h("div", { class: "stats overall" },
    stat("Findings", "num_findings", numFindings === null ? String(findings.length) : plain(numFindings)),
    stat("Sampled steps", "num_steps", String(steps.length)),
    stat("Layers", "layers", String(layers.length)),
    stat("Policy", "policy", typeof report.policy === "string" ? report.policy : DASH));
  const findingsBlock = h("div", { class: "findings-block" }, findingList(findings));
  let tableBlock;
  if (!steps.length || !layers.length) {
    tableBlock = message("This report has no sampled step: pass a sample batch (x, y) to TrainingHealth.");
  } else {
    const series = seriesOf(report, steps, statistics);
    const holder = h("div", { class: "table-holder" });
    const draw = (step) => holder.replaceChildren(healthTable(report, step, steps, layers, statistics, series));
    const select = h("select", { class: "sampled-step", "aria-label": "Sampled step" },
      steps.map((step) => h("option", { value: String(step) }, String(step))));
    select.value = String(steps[steps.length - 1]);
    select.addEventListener("change", () => draw(Number(select.value)));
    draw(steps[steps.length - 1]);
    tableBlock = h("div", null,
      h("label", { class: "muted" }, "Sampled step ", select, ` (of ${steps.length}; the sparklines run over all of them)`),
      holder);
  }
  const loss = lossChart(report);
  return [overall, findingsBlock, tableBlock,
    loss ? h("div", { class: "loss-block" }, h("span", { class: "label muted" }, "Loss by step"), loss) : null,
    details(report, SHOWN),
    h("p", { class: "muted" }, `Written ${when(entry.wall_time)} (step ${text(entry.step)})`)];
}

function card(entry) {
  return h(
    "section",
    { class: "card wide", "data-run": entry.run, "data-tag": entry.tag },
    h("header", null, h("h2", { class: "run" }, text(entry.run)), h("span", { class: "tag" }, text(entry.tag))),
    h("div", { class: "body" }, reportView(entry)),
  );
}

export async function render() {
  await renderTab("Training health",
    "Each layer's gradient, update, weights, activations, dead units and float16 range, " +
    "measured by TrainingHealth on a sample batch every few steps; findings name the layer.",
    fill);
}

async function fill(main, status, entries) {
  if (!entries.length) {
    status.replaceWith(message(
      "No training-health reports in this log directory yet. Pass log_dir= to " +
      "TrainingHealth (keras_bettermodels.callbacks) and point TensorBoard at it."));
    return;
  }
  status.replaceWith(h("p", { class: "muted summary" },
    `${entries.length} ${entries.length === 1 ? "run" : "runs"}; the latest report of each run is shown.`));
  main.appendChild(h("div", { class: "cards" }, entries.map(card)));
}
