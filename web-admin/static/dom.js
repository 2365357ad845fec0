// Small helpers every view shares: building elements whose text is always set with
// textContent (so nothing from the manager is ever parsed as HTML), formatting sizes,
// times and sector names, and updating table rows in place so a refresh every few
// seconds neither flickers nor steals a button from under the operator's pointer.

/**
 * Creates an element. `attrs` keys: "class", "testid" (data-testid), "data" (an object of
 * data-* values), "on" (an object of event listeners), "title", "hidden", or any DOM
 * property (href, type, value, disabled...). Children: nodes, strings (as text), arrays,
 * null/undefined/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "testid") element.dataset.testid = value;
    else if (key === "data") Object.assign(element.dataset, value);
    else if (key === "on") for (const [name, fn] of Object.entries(value)) element.addEventListener(name, fn);
    else if (key === "title" || key === "hidden") element[key] = value;
    else if (key in element) element[key] = value;
    else element.setAttribute(key, String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else if (child instanceof Node) element.append(child);
    else element.append(document.createTextNode(String(child)));
  }
}

/** A table cell: `h("td", attrs, ...children)`, with an em dash for empty values. */
export function td(value, attrs = {}) {
  const empty = value === null || value === undefined || value === "";
  return h("td", attrs, empty ? h("span", { class: "muted" }, "—") : value);
}

/** A coloured label. */
export function badge(text, tone = "neutral", attrs = {}) {
  return h("span", { ...attrs, class: `badge tone-${tone}` }, text);
}

/** A label and value pair in a key-value grid. */
export function field(label, value, attrs = {}) {
  const empty = value === null || value === undefined || value === "";
  return [h("dt", {}, label), h("dd", attrs, empty ? h("span", { class: "muted" }, "—") : value)];
}

/** "s-t01000-12", the name workers and logs use. */
export function sectorName(id) {
  return `s-t0${id.Miner}-${id.Number}`;
}

/** Bytes in binary units with three significant digits: "12.2 GiB". */
export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

/** A duration in seconds, short: "42s", "3m 05s", "2h 10m", "4d 3h". */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** Unix seconds as local "YYYY-MM-DD HH:MM:SS". */
export function formatTime(unixSeconds) {
  if (unixSeconds === null || unixSeconds === undefined) return "";
  const d = new Date(unixSeconds * 1000);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function nowSeconds() {
  return Date.now() / 1000;
}

/** "12s ago" that keeps counting: the ticker below rewrites it every second. */
export function ago(unixSeconds, attrs = {}) {
  if (unixSeconds === null || unixSeconds === undefined) return h("span", { class: "muted" }, "—");
  const element = h("span", { ...attrs, class: `ago ${attrs.class ?? ""}`.trim(), title: formatTime(unixSeconds) });
  element.dataset.since = String(unixSeconds);
  element.textContent = agoText(unixSeconds);
  return element;
}

function agoText(unixSeconds) {
  const seconds = nowSeconds() - unixSeconds;
  return seconds < 0 ? `in ${formatDuration(-seconds)}` : `${formatDuration(seconds)} ago`;
}

/** Rewrites every live "… ago" each second. */
export function startAgoTicker() {
  setInterval(() => {
    for (const element of document.querySelectorAll("[data-since]")) {
      element.textContent = agoText(Number(element.dataset.since));
    }
  }, 1000);
}

/**
 * Makes `tbody` show one row per item, in order. A row is rebuilt with `build(item)`
 * only when `signature(item)` changed; unchanged rows stay the same DOM nodes, and the
 * DOM is not touched at all when nothing changed, so focus and hover survive refreshes.
 */
export function syncRows(tbody, items, keyOf, build, signature = (item) => JSON.stringify(item)) {
  const old = new Map();
  for (const row of tbody.children) old.set(row.dataset.key, row);
  const rows = items.map((item) => {
    const key = String(keyOf(item));
    const sig = signature(item);
    let row = old.get(key);
    if (!row || row.rowSignature !== sig) {
      row = build(item);
      row.dataset.key = key;
      row.rowSignature = sig;
    }
    return row;
  });
  const same = rows.length === tbody.children.length && rows.every((row, i) => tbody.children[i] === row);
  if (!same) tbody.replaceChildren(...rows);
}

/** A table with a fixed header and a body to fill with syncRows. */
export function table(columns, attrs = {}) {
  const tbody = h("tbody");
  const element = h("table", { ...attrs, class: `grid ${attrs.class ?? ""}`.trim() },
    h("thead", {}, h("tr", {}, columns.map((column) =>
      typeof column === "string" ? h("th", {}, column) : column))),
    tbody);
  return { element, tbody };
}

/** A row spanning the whole table for "nothing here" and errors. */
export function emptyRow(columns, text, tone = "muted") {
  return h("tr", { class: "empty-row" }, h("td", { colSpan: columns, class: tone }, text));
}

/** Replaces the children of `element` with `children`. */
export function setChildren(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

/** Registered seal proof names, by the chain's numbers. */
const SEAL_PROOFS = [
  "2KiB v1", "8MiB v1", "512MiB v1", "32GiB v1", "64GiB v1",
  "2KiB v1.1", "8MiB v1.1", "512MiB v1.1", "32GiB v1.1", "64GiB v1.1",
  "2KiB synth", "8MiB synth", "512MiB synth", "32GiB synth", "64GiB synth",
  "2KiB NI", "8MiB NI", "512MiB NI", "32GiB NI", "64GiB NI",
];

export function sealProofName(number) {
  return SEAL_PROOFS[number] ? `${SEAL_PROOFS[number]} (${number})` : String(number);
}

/** A hex value in monospace that wraps anywhere. */
export function hex(value) {
  if (!value) return "";
  return h("code", { class: "hex", title: value }, value);
}
