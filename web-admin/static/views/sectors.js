// The Sectors view: every sector the manager knows, filtered by phase and miner (asked of
// the manager) and by free text over state, progress and worker (done here), sorted and
// paged 50 at a time. Its filters, sort and page live in this module, so live refreshes
// and trips to a sector's detail never reset them.

import { ago, emptyRow, h, nowSeconds, sectorName, syncRows, td } from "../dom.js";
import { PROGRESS_STEPS, askForView, phaseBadge, progressLadder } from "./common.js";

const PAGE_SIZE = 50;
const PHASES = [["", "All"], ["sealing", "Sealing"], ["finalized", "Finalized"], ["aborted", "Aborted"]];

const COLUMNS = [
  { key: "sector", label: "Sector", value: (s) => [s.ID.Miner, s.ID.Number] },
  { key: "phase", label: "Phase", value: (s) => s.Phase },
  { key: "state", label: "Latest state", value: (s) => s.LatestState ?? "" },
  { key: "progress", label: "Progress", value: (s) => s.Phase === "finalized" ? PROGRESS_STEPS.length : PROGRESS_STEPS.indexOf(s.Progress) },
  { key: "worker", label: "Worker", value: (s) => s.Worker ?? "" },
  { key: "store", label: "Store", value: (s) => s.Persisted ?? "" },
  { key: "updated", label: "Updated", value: (s) => s.UpdatedAt },
  { key: "note", label: "Abort reason", value: (s) => s.AbortReason ?? "" },
];

function compare(a, b) {
  if (Array.isArray(a)) {
    for (let i = 0; i < a.length; i += 1) {
      const c = compare(a[i], b[i]);
      if (c !== 0) return c;
    }
    return 0;
  }
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b));
}

export function createSectorsView(ctx) {
  const state = { phase: "", miner: "", text: "", page: 0, sort: "sector", descending: true };
  let sectors = [];
  let loaded = false;
  let generation = 0;

  const phaseButtons = PHASES.map(([value, label]) => h("button", {
    type: "button",
    class: "seg",
    testid: `phase-${value || "all"}`,
    on: { click: () => { state.phase = value; state.page = 0; paintFilters(); ctx.refreshNow(); } },
  }, label));

  const minerInput = h("input", {
    type: "text", inputMode: "numeric", placeholder: "all", size: 8, testid: "miner-filter",
    "aria-label": "Miner actor id",
  });
  let minerTimer = null;
  minerInput.addEventListener("input", () => {
    clearTimeout(minerTimer);
    minerTimer = setTimeout(() => {
      const value = minerInput.value.trim().replace(/^[ft]0/i, "");
      if (value !== "" && !/^\d+$/.test(value)) {
        minerInput.classList.add("invalid");
        return;
      }
      minerInput.classList.remove("invalid");
      if (value !== state.miner) {
        state.miner = value;
        state.page = 0;
        ctx.refreshNow();
      }
    }, 400);
  });

  const textInput = h("input", {
    type: "search", placeholder: "state, progress, worker, s-t01000-12…", size: 30, testid: "sector-filter",
    "aria-label": "Filter sectors",
  });
  textInput.addEventListener("input", () => { state.text = textInput.value; state.page = 0; paint(); });

  const prevButton = h("button", { type: "button", testid: "page-prev", on: { click: () => { state.page -= 1; paint(); } } }, "‹ Prev");
  const nextButton = h("button", { type: "button", testid: "page-next", on: { click: () => { state.page += 1; paint(); } } }, "Next ›");
  const pageInfo = h("span", { class: "page-info", testid: "page-info" });
  const errorSlot = h("div");

  const headerCells = COLUMNS.map((column) => h("th", {
    class: "sortable",
    on: { click: () => {
      if (state.sort === column.key) state.descending = !state.descending;
      else { state.sort = column.key; state.descending = column.key === "updated" || column.key === "sector"; }
      paint();
    } },
  }, column.label));
  const tbody = h("tbody");
  const tableElement = h("table", { class: "grid clickable", testid: "sectors-table" },
    h("thead", {}, h("tr", {}, headerCells)), tbody);

  const root = h("section", { class: "view", testid: "view-sectors" },
    h("div", { class: "toolbar" },
      h("div", { class: "segmented", role: "group", "aria-label": "Phase" }, phaseButtons),
      h("label", { class: "inline" }, "Miner ", h("span", { class: "muted" }, "t0"), minerInput),
      h("label", { class: "inline grow" }, "Filter ", textInput),
      h("div", { class: "pager" }, pageInfo, prevButton, nextButton)),
    errorSlot,
    h("div", { class: "panel flush" }, tableElement));

  function paintFilters() {
    for (const [index, [value]] of PHASES.entries()) {
      phaseButtons[index].classList.toggle("active", state.phase === value);
      phaseButtons[index].setAttribute("aria-pressed", String(state.phase === value));
    }
    headerCells.forEach((cell, index) => {
      const key = COLUMNS[index].key;
      cell.classList.toggle("sorted", state.sort === key);
      cell.dataset.direction = state.sort === key ? (state.descending ? "desc" : "asc") : "";
    });
  }

  function visible() {
    const needle = state.text.trim().toLowerCase();
    // The manager filters by phase and miner; doing it here too keeps the table right
    // in the moment between a filter change and the manager's answer.
    let rows = sectors.filter((s) => (!state.phase || s.Phase === state.phase) &&
      (state.miner === "" || s.ID.Miner === Number(state.miner)));
    if (needle) {
      rows = rows.filter((s) => [sectorName(s.ID), s.LatestState, s.Progress, s.Worker, s.Phase, s.AbortReason, s.Persisted]
        .some((value) => value && String(value).toLowerCase().includes(needle)));
    }
    const column = COLUMNS.find((c) => c.key === state.sort) ?? COLUMNS[0];
    const sign = state.descending ? -1 : 1;
    return [...rows].sort((a, b) => sign * compare(column.value(a), column.value(b)) ||
      -compare([a.ID.Miner, a.ID.Number], [b.ID.Miner, b.ID.Number]));
  }

  function paint() {
    paintFilters();
    const rows = visible();
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
    state.page = Math.min(Math.max(0, state.page), pages - 1);
    const first = state.page * PAGE_SIZE;
    const shown = rows.slice(first, first + PAGE_SIZE);
    pageInfo.textContent = rows.length === 0
      ? "no sectors"
      : `${first + 1}–${first + shown.length} of ${rows.length}${rows.length !== sectors.length ? ` (${sectors.length} before the filter)` : ""} · page ${state.page + 1}/${pages}`;
    prevButton.disabled = state.page === 0;
    nextButton.disabled = state.page >= pages - 1;
    if (!loaded) {
      tbody.replaceChildren(emptyRow(COLUMNS.length, "Loading…"));
    } else if (shown.length === 0) {
      tbody.replaceChildren(emptyRow(COLUMNS.length, sectors.length === 0
        ? "The manager has no sector in this phase."
        : "No sector matches the filter."));
    } else {
      syncRows(tbody, shown, (s) => `${s.ID.Miner}/${s.ID.Number}`, buildRow);
    }
  }

  function buildRow(s) {
    const open = () => ctx.navigate(`#/sectors/${s.ID.Miner}/${s.ID.Number}`);
    const stale = s.Phase === "sealing" && nowSeconds() - s.UpdatedAt > 3600;
    return h("tr", {
      testid: "sector-row",
      tabIndex: 0,
      data: { phase: s.Phase, sector: `${s.ID.Miner}/${s.ID.Number}` },
      on: {
        click: open,
        keydown: (event) => { if (event.key === "Enter") open(); },
      },
    },
    td(h("a", { href: `#/sectors/${s.ID.Miner}/${s.ID.Number}`, class: "mono strong", on: { click: (e) => e.stopPropagation() } }, sectorName(s.ID))),
    td(phaseBadge(s.Phase)),
    td(s.LatestState ? h("span", { class: "mono" }, s.LatestState) : ""),
    td(progressLadder(s)),
    td(s.Worker ?? ""),
    td(s.Persisted ?? ""),
    td(ago(s.UpdatedAt, { class: stale ? "warn-text" : "" })),
    td(s.AbortReason ? h("span", { class: "error-text" }, s.AbortReason) : "", { class: "wrap" }));
  }

  async function refresh() {
    const mine = ++generation;
    const miner = state.miner === "" ? null : Number(state.miner);
    const asked = await askForView(ctx, errorSlot, () => ctx.call("Venus.ListSectors", state.phase, miner),
      { isCurrent: () => mine === generation });
    if (!asked) return;
    sectors = asked.answer ?? [];
    loaded = true;
    for (const s of sectors) ctx.knownMiners.add(s.ID.Miner);
    paint();
  }

  paint();
  return { root, refresh, title: "Sectors" };
}
