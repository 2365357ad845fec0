// The Stores view: the persistent stores sealed sectors move to, with the space their
// file system has free, the space promised to sectors still on their way (reserved),
// what is left once those arrive, and which sectors hold the reservations.

import { badge, emptyRow, formatBytes, h, setChildren, syncRows, table, td } from "../dom.js";
import { askForView } from "./common.js";

const COLUMNS = ["Store", "Path", "Weight", "Mode", "Free", "Reserved", "Free after reservations", "Reserved by", "Error"];

export function createStoresView(ctx) {
  const errorSlot = h("div");
  const totals = h("div", { class: "totals", testid: "store-totals" });
  const grid = table(COLUMNS, { testid: "stores-table" });
  const root = h("section", { class: "view", testid: "view-stores" },
    errorSlot, totals, h("div", { class: "panel flush" }, grid.element));

  function meter(free, reserved) {
    // Of the space free now, how much is already promised.
    const share = free > 0 ? Math.min(1, reserved / free) : (reserved > 0 ? 1 : 0);
    const fill = h("i", { class: share > 0.9 ? "tone-red" : share > 0.6 ? "tone-yellow" : "tone-blue" });
    fill.style.width = `${(share * 100).toFixed(1)}%`;
    return h("span", { class: "meter", title: `${(share * 100).toFixed(1)} % of the free space is reserved` }, fill);
  }

  function buildRow(store) {
    const free = store.Free ?? null;
    const after = free === null ? null : free - (store.Reserved ?? 0);
    return h("tr", { testid: "store-row", data: { store: store.Name } },
      td(h("span", { class: "strong" }, store.Name)),
      td(h("span", { class: "mono" }, store.Path), { class: "wrap" }),
      td(String(store.Weight), { class: "num" }),
      td(store.ReadOnly ? badge("read-only", "yellow") : badge("read-write", "neutral")),
      td(free === null ? "" : formatBytes(free), { class: "num", title: free === null ? "" : `${free} bytes` }),
      td(h("span", { class: "with-meter" }, formatBytes(store.Reserved ?? 0), free === null ? null : meter(free, store.Reserved ?? 0)),
        { class: "num", title: `${store.Reserved ?? 0} bytes` }),
      td(after === null ? "" : h("span", { class: after < 0 ? "error-text" : "" }, formatBytes(after)), { class: "num" }),
      td(store.ReservedBy?.length ? h("span", { class: "mono" }, store.ReservedBy.join(", ")) : "", { class: "wrap" }),
      td(store.Error ? h("span", { class: "error-text" }, store.Error) : "", { class: "wrap" }));
  }

  async function refresh() {
    const asked = await askForView(ctx, errorSlot, () => ctx.call("Venus.StoreList"));
    if (!asked) return;
    const stores = asked.answer ?? [];
    const free = stores.reduce((sum, s) => sum + (s.ReadOnly ? 0 : (s.Free ?? 0)), 0);
    const reserved = stores.reduce((sum, s) => sum + (s.Reserved ?? 0), 0);
    const writable = stores.filter((s) => !s.ReadOnly).length;
    const broken = stores.filter((s) => s.Error).length;
    const totalsSignature = JSON.stringify([free, reserved, writable, broken, stores.length]);
    if (totals.dataset.signature !== totalsSignature) {
      totals.dataset.signature = totalsSignature;
      const tile = (label, value, tone = "") => h("div", { class: `tile ${tone}` }, h("div", { class: "tile-value" }, value), h("div", { class: "tile-label" }, label));
      setChildren(totals,
        tile("stores", `${stores.length}`),
        tile("writable", `${writable}`),
        tile("free (writable)", formatBytes(free)),
        tile("reserved", formatBytes(reserved)),
        tile("free after reservations", formatBytes(free - reserved), free - reserved < 0 ? "tone-red" : ""),
        broken ? tile("unreadable", String(broken), "tone-red") : null);
    }
    if (stores.length === 0) {
      grid.tbody.replaceChildren(emptyRow(COLUMNS.length, "No persistent store is configured."));
      return;
    }
    syncRows(grid.tbody, stores, (s) => s.Name, buildRow);
  }

  return { root, refresh, title: "Stores" };
}
