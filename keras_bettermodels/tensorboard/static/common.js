// Shared helpers of the keras-bettermodels TensorBoard tabs.
//
// A plain ES module, no build step. Rules every tab follows:
// - every string that comes from the data is inserted as text (`textContent`,
//   text nodes, attribute values), never as HTML: run and layer names are
//   user data;
// - requests go only to the plugin's own routes, relative to the iframe's
//   base (`/data/plugin/<name>/`);
// - colours come from CSS variables, light or dark following TensorBoard's
//   dark mode (its `body.dark-mode`) or, standing alone, the browser's
//   `prefers-color-scheme`.

export const DASH = "\u2014";
const SVG_NS = "http://www.w3.org/2000/svg";

const STYLE = `
:root {
  color-scheme: light;
  --fg: #212121; --muted: #5f6368; --bg: #ffffff; --card: #ffffff;
  --border: #dadce0; --head: #f1f3f4; --accent: #e65100;
  --great-bg: #c8e6c9; --great-fg: #1b5e20;
  --ok-bg: #dcedc8; --ok-fg: #33691e;
  --check-bg: #ffe0b2; --check-fg: #8a4b00;
  --bug-bg: #ffcdd2; --bug-fg: #b71c1c;
  --none-bg: #eeeeee; --none-fg: #424242;
  --bar: #1a73e8; --fill: #f9ab00; --compile: #9334e6; --steady: #188038;
  --error-bg: #fce8e6; --error-fg: #a50e0e;
}
:root[data-theme="dark"] {
  color-scheme: dark;
  --fg: #e8eaed; --muted: #bdc1c6; --bg: #303030; --card: #3c3c3c;
  --border: #5f6368; --head: #424242; --accent: #ffb74d;
  --great-bg: #1e4620; --great-fg: #a5d6a7;
  --ok-bg: #33471f; --ok-fg: #c5e1a5;
  --check-bg: #5a3d00; --check-fg: #ffcc80;
  --bug-bg: #5c1a1a; --bug-fg: #ef9a9a;
  --none-bg: #4a4a4a; --none-fg: #e0e0e0;
  --bar: #8ab4f8; --fill: #fdd663; --compile: #d7aefb; --steady: #81c995;
  --error-bg: #5c1a1a; --error-fg: #f6aea9;
}
@media (prefers-color-scheme: dark) {
  :root:not([data-theme="light"]) {
    color-scheme: dark;
    --fg: #e8eaed; --muted: #bdc1c6; --bg: #303030; --card: #3c3c3c;
    --border: #5f6368; --head: #424242; --accent: #ffb74d;
    --great-bg: #1e4620; --great-fg: #a5d6a7;
    --ok-bg: #33471f; --ok-fg: #c5e1a5;
    --check-bg: #5a3d00; --check-fg: #ffcc80;
    --bug-bg: #5c1a1a; --bug-fg: #ef9a9a;
    --none-bg: #4a4a4a; --none-fg: #e0e0e0;
    --bar: #8ab4f8; --fill: #fdd663; --compile: #d7aefb; --steady: #81c995;
    --error-bg: #5c1a1a; --error-fg: #f6aea9;
  }
}
html, body { background: var(--bg); color: var(--fg); }
body { font: 14px/1.45 Roboto, "Helvetica Neue", Arial, sans-serif; margin: 16px; }
h1 { font-size: 20px; font-weight: 500; margin: 0 0 4px; }
h2 { font-size: 16px; font-weight: 500; margin: 0; overflow-wrap: anywhere; }
p { margin: 4px 0; }
.muted { color: var(--muted); }
.cards { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; margin-top: 12px; }
.card { background: var(--card); border: 1px solid var(--border); border-radius: 8px;
  padding: 12px 16px; min-width: 320px; max-width: 640px; flex: 1 1 380px; }
.card header { display: flex; justify-content: space-between; gap: 8px;
  align-items: baseline; flex-wrap: wrap; margin-bottom: 8px; }
.tag { color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
th, td { border-bottom: 1px solid var(--border); padding: 4px 8px; text-align: left;
  vertical-align: top; }
th { background: var(--head); font-weight: 500; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.name { overflow-wrap: break-word; word-break: normal; font-family: "Roboto Mono", monospace; font-size: 13px; }
.band { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px;
  font-weight: 500; white-space: nowrap; }
.band-great { background: var(--great-bg); color: var(--great-fg); }
.band-ok { background: var(--ok-bg); color: var(--ok-fg); }
.band-check { background: var(--check-bg); color: var(--check-fg); }
.band-bug { background: var(--bug-bg); color: var(--bug-fg); }
.band-none { background: var(--none-bg); color: var(--none-fg); }
tr.band-great td:first-child { box-shadow: inset 4px 0 var(--great-fg); }
tr.band-ok td:first-child { box-shadow: inset 4px 0 var(--ok-fg); }
tr.band-check td:first-child { box-shadow: inset 4px 0 var(--check-fg); }
tr.band-bug td:first-child { box-shadow: inset 4px 0 var(--bug-fg); }
tr.all td { border-top: 2px solid var(--border); font-style: italic; }
.kink { display: inline-block; margin-left: 6px; padding: 0 6px; border-radius: 10px;
  border: 1px solid var(--accent); color: var(--accent); font-size: 11px; }
.message { border-radius: 6px; padding: 8px 12px; margin: 8px 0; background: var(--head); }
.message.error { background: var(--error-bg); color: var(--error-fg); }
.stats { display: flex; flex-wrap: wrap; gap: 4px 20px; margin: 4px 0 8px; }
.stat .label { color: var(--muted); font-size: 12px; display: block; }
.stat .value { font-size: 18px; font-variant-numeric: tabular-nums; }
dl.details { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px;
  margin: 8px 0 0; font-size: 12px; }
dl.details dt { color: var(--muted); }
dl.details dd { margin: 0; overflow-wrap: anywhere; }
select { background: var(--card); color: var(--fg); border: 1px solid var(--border);
  border-radius: 4px; padding: 2px 4px; }
svg text { fill: var(--fg); font-size: 11px; }
svg.chart { width: 100%; max-width: 440px; height: auto; display: block; }
table.legend { max-width: 760px; }
svg .axis { stroke: var(--muted); }
ul.advice { margin: 4px 0; padding-left: 20px; }
.card.wide { max-width: none; flex-basis: 100%; }
table.health td.stat { padding: 2px 6px; }
table.health .value-text { display: block; }
svg.spark { display: block; margin-left: auto; }
svg.spark .spark-line, svg .loss-line { fill: none; stroke: var(--bar); stroke-width: 1.2; }
svg.spark .spark-point { fill: var(--bar); }
svg.spark .spark-flag, svg .spike { fill: var(--bug-fg); }
svg.spark .spark-now { stroke: var(--accent); stroke-width: 1; }
svg.chart.loss { max-width: 560px; }
ul.findings { margin: 4px 0 8px; padding-left: 0; list-style: none; }
ul.findings li { margin: 4px 0; padding: 4px 8px; border-radius: 6px; background: var(--head);
  color: var(--fg); overflow-wrap: anywhere; }
ul.findings code.layer { font-family: "Roboto Mono", monospace; font-size: 13px; }
`;

/** Follows TensorBoard's dark mode, or the browser's when standing alone. */
function followTheme() {
  const root = document.documentElement;
  let parentBody = null;
  try {
    if (window.parent !== window) parentBody = window.parent.document.body;
  } catch (error) {
    parentBody = null; // another origin: the media query decides
  }
  if (!parentBody) return;
  const update = () => {
    root.dataset.theme = parentBody.classList.contains("dark-mode") ? "dark" : "light";
  };
  update();
  new MutationObserver(update).observe(parentBody, {
    attributes: true,
    attributeFilter: ["class"],
  });
}

/** Styles the page and returns an empty container for the tab's content. */
export function setup() {
  const style = document.createElement("style");
  style.textContent = STYLE;
  document.head.appendChild(style);
  followTheme();
  const main = document.createElement("main");
  document.body.appendChild(main);
  return main;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function setAttributes(node, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "on") {
      for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    } else {
      node.setAttribute(key, String(value));
    }
  }
  return node;
}

/** An HTML element; string children become text nodes, never markup. */
export function h(tag, attrs, ...children) {
  return append(setAttributes(document.createElement(tag), attrs), children);
}

/** An SVG element, with the same rules as `h`. */
export function s(tag, attrs, ...children) {
  return append(setAttributes(document.createElementNS(SVG_NS, tag), attrs), children);
}

/** A note in the tab: `kind` is "info" or "error". */
export function message(text, kind = "info") {
  return h("div", { class: `message ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/** GET one of the plugin's own routes; rejects with the server's message. */
export async function getJson(route, params = {}) {
  const query = new URLSearchParams(params).toString();
  const response = await fetch(query ? `${route}?${query}` : route);
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    body = null;
  }
  if (!response.ok) {
    const reason = body && typeof body.error === "string" ? body.error : response.statusText;
    throw new Error(`${response.status}: ${reason}`);
  }
  if (body === null || typeof body !== "object") throw new Error("The answer was not JSON.");
  return body;
}

/** A number from the data (TensorBoard sends NaN and Infinity as strings), or null. */
export function num(value) {
  if (typeof value === "number") return value;
  if (value === "NaN" || value === "Infinity" || value === "-Infinity") return Number(value);
  return null;
}

/** A finite number from the data, or null. */
export function finite(value) {
  const n = num(value);
  return n !== null && Number.isFinite(n) ? n : null;
}

/** A relative error or other small quantity: 3.1e-9, 0.25, NaN; "—" if absent. */
export function sci(value, digits = 2) {
  const n = num(value);
  if (n === null) return DASH;
  if (!Number.isFinite(n)) return String(n);
  if (n === 0) return "0";
  const size = Math.abs(n);
  return size < 1e-3 || size >= 1e4 ? n.toExponential(digits) : String(Number(n.toPrecision(digits + 1)));
}

/** A duration in seconds: "183 ms", "1.63 s"; "—" if absent. */
export function seconds(value) {
  const n = num(value);
  if (n === null) return DASH;
  if (!Number.isFinite(n)) return String(n);
  if (n === 0) return "0 s";
  if (Math.abs(n) < 1) return `${Number((n * 1000).toPrecision(3))} ms`;
  return `${Number(n.toPrecision(3))} s`;
}

/** A plain count or rate: "12,345", "8.9"; "—" if absent. */
export function plain(value, digits = 3) {
  const n = num(value);
  if (n === null) return DASH;
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString("en-US");
  return String(Number(n.toPrecision(digits)));
}

/** Any value from the data, as text; "—" if absent. */
export function text(value) {
  if (value === null || value === undefined || value === "") return DASH;
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "number") {
    return Number.isInteger(value) ? value.toLocaleString("en-US") : sci(value, 3);
  }
  if (typeof value === "string") return value;
  if (Array.isArray(value)) {
    return value.length ? value.map((item) => text(item)).join(", ") : "none";
  }
  try {
    return JSON.stringify(value);
  } catch (error) {
    return String(value);
  }
}

/** The first of `names` that `object` has (not null), or undefined. */
export function field(object, ...names) {
  if (!object || typeof object !== "object") return undefined;
  for (const name of names) {
    if (object[name] !== undefined && object[name] !== null) return object[name];
  }
  return undefined;
}

/** The date and time a report was written, or "—". */
export function when(wallTime) {
  const n = finite(wallTime);
  return n === null ? DASH : new Date(n * 1000).toLocaleString();
}

/**
 * A `dl` of the report's fields that the tab does not otherwise show.
 *
 * `shown` holds the fields to leave out; `labels` maps field names to words.
 */
export function details(report, shown, labels = {}) {
  const rows = [];
  if (!report || typeof report !== "object") return null;
  for (const [key, value] of Object.entries(report)) {
    if (shown.has(key)) continue;
    let shownValue = text(value);
    if (shownValue.length > 200) shownValue = `${shownValue.slice(0, 200)}\u2026`;
    const label = Object.prototype.hasOwnProperty.call(labels, key) ? labels[key] : key;
    rows.push(h("dt", null, label), h("dd", { "data-field": key }, shownValue));
  }
  return rows.length ? h("dl", { class: "details" }, rows) : null;
}

// Requests in flight at once when the tab fetches the runs' whole reports.
const PARALLEL_FETCHES = 6;

/**
 * The whole report of each listed entry, fetched from `report` one run at a
 * time: `reports` lists summaries only. An entry that already carries an
 * error is kept as it is; one whose fetch fails gets the failure as its error.
 */
export async function withReports(entries) {
  const filled = entries.map((entry) => ({ ...entry, report: null }));
  let next = 0;
  async function worker() {
    while (next < filled.length) {
      const index = next++;
      const entry = filled[index];
      if (!entry || entry.error) continue;
      try {
        const params = { run: entry.run, tag: entry.tag };
        if (entry.step !== null && entry.step !== undefined) params.step = String(entry.step);
        const full = await getJson("report", params);
        filled[index] = { ...entry, ...full };
      } catch (error) {
        filled[index] = { ...entry, error: `Could not load the report: ${error.message}` };
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(PARALLEL_FETCHES, filled.length) }, worker));
  return filled;
}

// One tab's frame: heading, intro, the "reports" listing, each run's whole
// report from "report", and their error messages; `draw(main, status,
// entries)` renders the entries, each with its `report` (or its `error`).
export async function renderTab(title, intro, draw) {
  const main = setup();
  try {
    main.appendChild(h("h1", null, title));
    main.appendChild(h("p", { class: "muted" }, intro));
    const status = main.appendChild(message("Loading\u2026"));
    let data;
    try {
      data = await getJson("reports");
    } catch (error) {
      status.replaceWith(message(`Could not load the reports: ${error.message}`, "error"));
      return;
    }
    const listed = Array.isArray(data.reports) ? data.reports : [];
    await draw(main, status, await withReports(listed));
  } finally {
    document.body.dataset.rendered = "true";
  }
}
