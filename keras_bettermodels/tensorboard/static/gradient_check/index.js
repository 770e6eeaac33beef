// The "Gradient check" tab of keras-bettermodels.
//
// Per run, the latest gradient-check report as the article's reference table:
// the headline relative error (the worst row's: its band is the verdict) and
// the row that sets it, a row per variable with its relative
// error, verdict and colour band, kinks marked; a step selector for earlier
// checks; runs side by side. Every string from the data is inserted as text.

import {
  DASH, details, field, getJson, h, message, num, plain, renderTab, sci, text, when,
} from "./static/common.js";

// This project's bands (REFERENCE.md): great < 1e-7 <= ok < 1e-5 <= check < 1e-3 <= bug.
const DEFAULT_THRESHOLDS = { great: 1e-7, ok: 1e-5, check: 1e-3 };
const BANDS = ["great", "ok", "check", "bug"];
// Fields this tab renders itself; the others show under the table, by these labels.
const SHOWN = new Set([
  "relative_error", "verdict", "passed", "variables", "all_variables", "kinks", "thresholds",
  "set_by",
]);
const LABELS = {
  method: "Method",
  epsilon: "\u03b5 (finite-difference step)",
  loss: "J(\u03b8)",
  num_parameters: "Parameters",
  num_evaluations: "Loss evaluations",
  elapsed: "Seconds",
  backend: "Backend",
  num_directions: "Directions per variable",
  max_coordinates_per_variable: "Coordinates per variable (cap)",
  seed: "Seed",
  training: "Training mode",
  nudge: "Nudged off kinks (\u00d7 RMS)",
};
// Ng's reading of each band (the article's reference table).
const READINGS = {
  great: "the gradient is right",
  ok: "fine for most models",
  check: "double-check the components",
  bug: "there is probably a bug",
};

function thresholdsOf(report) {
  const given = field(report, "thresholds");
  const result = { ...DEFAULT_THRESHOLDS };
  if (given && typeof given === "object" && !Array.isArray(given)) {
    for (const band of Object.keys(DEFAULT_THRESHOLDS)) {
      const value = num(given[band]);
      if (value !== null && Number.isFinite(value)) result[band] = value;
    }
  }
  return result;
}

/** The colour band of a verdict, or of a relative error when the verdict is unknown. */
function bandOf(verdict, relativeError, thresholds) {
  if (typeof verdict === "string" && BANDS.includes(verdict)) return verdict;
  const error = num(relativeError);
  if (error === null) return "none";
  if (Number.isNaN(error)) return "bug";
  if (error < thresholds.great) return "great";
  if (error < thresholds.ok) return "ok";
  if (error < thresholds.check) return "check";
  return "bug";
}

function badge(verdict, band) {
  const words = typeof verdict === "string" && verdict ? verdict : DASH;
  return h("span", { class: `band band-${band}`, "data-band": band }, words);
}

/** The variables in which a step crossed a kink (name -> count or null), and other notes. */
function kinksOf(report) {
  const names = new Map();
  const notes = [];
  const kinks = field(report, "kinks");
  if (Array.isArray(kinks)) {
    for (const kink of kinks) {
      if (typeof kink === "string") {
        names.set(kink, null);
      } else if (kink && typeof kink === "object" && typeof field(kink, "name", "variable") === "string") {
        names.set(field(kink, "name", "variable"), null);
      } else {
        notes.push(text(kink));
      }
    }
  } else if (kinks !== undefined) {
    notes.push(text(kinks));
  }
  const variables = field(report, "variables");
  for (const variable of Array.isArray(variables) ? variables : []) {
    const count = num(field(variable, "kinks"));
    const name = field(variable, "name");
    if (typeof name === "string" && count !== null && count > 0) names.set(name, count);
  }
  return { names, notes, given: kinks !== undefined };
}

function shapeText(shape) {
  if (Array.isArray(shape)) return `(${shape.map((d) => (d === null ? "None" : String(d))).join(", ")})`;
  return text(shape);
}

function legend(thresholds) {
  const t = thresholds;
  const e = (value) => (Number.isFinite(value) && value > 0 ? value.toExponential(0) : sci(value));
  const rows = [
    ["great", `\u2264 ${e(t.great)}`, `e < ${e(t.great)}`],
    ["ok", `${e(t.great)} \u2013 ${e(t.ok)}`, `${e(t.great)} \u2264 e < ${e(t.ok)}`],
    ["check", `~ ${e(t.ok)}`, `${e(t.ok)} \u2264 e < ${e(t.check)}`],
    ["bug", `\u2265 ${e(t.check)}`, `e \u2265 ${e(t.check)}`],
  ];
  return h(
    "table",
    { class: "legend", "aria-label": "Reference table" },
    h("thead", null, h("tr", null, h("th", { class: "num" }, "Relative error"), h("th", null, "Reading (Ng)"),
      h("th", null, "Verdict"), h("th", null, "Band"))),
    h(
      "tbody",
      null,
      rows.map(([band, range, exact]) =>
        h("tr", { class: `band-${band}`, "data-band": band }, h("td", { class: "num" }, range),
          h("td", null, READINGS[band]), h("td", null, h("span", { class: `band band-${band}` }, band)),
          h("td", { class: "muted" }, exact))),
    ),
  );
}

/** A variable's path as text nodes, with line-break opportunities after each "/". */
function breakable(path) {
  return path.split("/").flatMap((part, index, parts) =>
    index < parts.length - 1 ? [`${part}/`, h("wbr", null)] : [part]);
}

function variableRow(variable, thresholds, kinks, isAll = false) {
  const name = field(variable, "name");
  const rowBand = bandOf(field(variable, "verdict"), field(variable, "relative_error"), thresholds);
  const kinked = typeof name === "string" && kinks.names.has(name);
  const count = kinked ? kinks.names.get(name) : null;
  const mark = kinked
    ? h("span", {
      class: "kink",
      title: "A step crossed a non-differentiable point (a ReLU at 0, a max-pool tie); " +
        "compared one-sidedly, not counted as a bug.",
    }, count ? `kink \u00d7${count}` : "kink")
    : null;
  return h(
    "tr",
    { class: `band-${rowBand}${isAll ? " all" : ""}`, "data-band": rowBand, "data-kink": kinked ? "true" : null },
    h("td", { class: "name" }, typeof name === "string" ? breakable(name) : text(name), mark),
    h("td", { class: "num" }, shapeText(field(variable, "shape"))),
    h("td", { class: "num" }, plain(field(variable, "checked"))),
    h("td", { class: "num" }, sci(field(variable, "relative_error"))),
    h("td", null, badge(field(variable, "verdict"), rowBand)),
  );
}

function reportView(entry) {
  const report = entry.report;
  if (entry.error) return [message(entry.error, "error")];
  if (!report || typeof report !== "object") return [message("This report is empty.", "error")];
  const thresholds = thresholdsOf(report);
  const kinks = kinksOf(report);
  const verdict = field(report, "verdict");
  const band = bandOf(verdict, report.relative_error, thresholds);
  const passed = field(report, "passed");
  const overall = h(
    "div",
    { class: "stats overall" },
    h("div", { class: "stat" }, h("span", { class: "label" }, "Relative error"),
      h("span", { class: "value", "data-field": "relative_error" }, sci(report.relative_error))),
    h("div", { class: "stat" }, h("span", { class: "label" }, "Set by"),
      h("span", { class: "value", "data-field": "set_by" }, typeof report.set_by === "string" ? report.set_by : DASH)),
    h("div", { class: "stat" }, h("span", { class: "label" }, "Verdict"),
      h("span", { class: "value", "data-field": "verdict" }, badge(verdict, band))),
    h("div", { class: "stat" }, h("span", { class: "label" }, "Passed"),
      h("span", { class: "value", "data-field": "passed" }, typeof passed === "boolean" ? (passed ? "yes" : "no") : DASH)),
    h("div", { class: "stat" }, h("span", { class: "label" }, "Step"),
      h("span", { class: "value", "data-field": "step" }, entry.step === null || entry.step === undefined ? DASH : String(entry.step))),
  );
  const variables = field(report, "variables");
  const allVariables = field(report, "all_variables");
  const unit = field(report, "method") === "coordinate" ? "Coordinates" : "Directions";
  let table;
  if (Array.isArray(variables) && variables.length) {
    table = h(
      "table",
      { class: "variables" },
      h("thead", null, h("tr", null, h("th", null, "Variable"), h("th", { class: "num" }, "Shape"),
        h("th", { class: "num" }, unit), h("th", { class: "num" }, "Relative error"), h("th", null, "Verdict"))),
      h(
        "tbody",
        null,
        variables.map((variable) => variableRow(variable, thresholds, kinks)),
        allVariables && typeof allVariables === "object" ? variableRow(allVariables, thresholds, kinks, true) : null,
      ),
    );
  } else {
    table = message("This report lists no variables.");
  }
  let kinkLine = null;
  const nudge = num(field(report, "nudge"));
  if (kinks.given || kinks.names.size) {
    const listed = [...kinks.names.keys(), ...kinks.notes];
    const why = nudge !== null
      ? ` \u2014 ReLUs sat exactly on their kinks at the weights (zero biases on zero inputs); checked at the weights nudged by \u00b1${nudge} \u00d7 each variable's RMS, where a wrong gradient is still wrong.`
      : " \u2014 a step crossed a non-differentiable point (ReLU at 0, a max-pool tie); not counted as a bug.";
    kinkLine = h("p", { class: "kinks", "data-nudge": nudge === null ? null : String(nudge) },
      h("strong", null, "Kinks: "),
      listed.length ? listed.join(", ") : "none",
      listed.length ? h("span", { class: "muted" }, why) : null);
  }
  return [overall, table, kinkLine, details(report, SHOWN, LABELS),
    h("p", { class: "muted" }, `Written ${when(entry.wall_time)}`)];
}

function card(entry) {
  const body = h("div", { class: "body" }, reportView(entry));
  const steps = Array.isArray(entry.steps) ? entry.steps : [];
  let selector = null;
  if (steps.length > 1) {
    const select = h("select", { "aria-label": "Step" },
      steps.map((step) => h("option", { value: String(step) }, String(step))));
    select.value = String(entry.step);
    select.addEventListener("change", async () => {
      select.disabled = true;
      try {
        const chosen = await getJson("report", { run: entry.run, tag: entry.tag, step: select.value });
        body.replaceChildren(...reportView(chosen).filter(Boolean));
      } catch (error) {
        body.replaceChildren(message(`Could not load step ${select.value}: ${error.message}`, "error"));
      } finally {
        select.disabled = false;
      }
    });
    const count = entry.steps_sampled ? `a sample of ${steps.length} checks` : `${steps.length} checks`;
    selector = h("label", { class: "muted" }, "Step ", select, ` (${count})`);
  }
  return h(
    "section",
    { class: "card", "data-run": entry.run, "data-tag": entry.tag },
    h("header", null, h("h2", { class: "run" }, text(entry.run)), h("span", { class: "tag" }, text(entry.tag))),
    selector,
    body,
  );
}

export async function render() {
  await renderTab("Gradient check",
    "Relative difference \u2016d\u03b8_approx \u2212 d\u03b8\u2016\u2082 / (\u2016d\u03b8_approx\u2016\u2082 + \u2016d\u03b8\u2016\u2082) between " +
    "backprop's gradient and a two-sided finite difference, in float64, per variable.",
    fill);
}

async function fill(main, status, entries) {
  const first = entries.find((entry) => entry && entry.report && typeof entry.report === "object");
  main.appendChild(legend(thresholdsOf(first ? first.report : null)));
  if (!entries.length) {
    status.replaceWith(message(
      "No gradient-check reports in this log directory yet. Pass log_dir= to " +
      "GradientCheckCallback (keras_bettermodels.callbacks) and point TensorBoard at it."));
    return;
  }
  status.replaceWith(h("p", { class: "muted summary" },
    `${entries.length} ${entries.length === 1 ? "report" : "reports"}; the latest check of each run is shown.`));
  main.appendChild(h("div", { class: "cards" }, entries.map(card)));
}
