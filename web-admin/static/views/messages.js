// The Messages view: the manager's chain outbox (precommit and prove-commit batches).
// By default the messages not yet final, as the manager lists them with no filter; a
// selector shows failed or final ones instead.

import { h } from "../dom.js";
import { askForView, messageTable } from "./common.js";

const CHOICES = [
  ["pending", "Not yet final", null],
  ["failed", "Failed", ["failed"]],
  ["final", "Final", ["final"]],
  ["all", "All", ["created", "pushed", "executed", "final", "failed"]],
];

export function createMessagesView(ctx) {
  let choice = "pending";
  let generation = 0;
  const select = h("select", { testid: "message-states", "aria-label": "Message states" },
    CHOICES.map(([value, label]) => h("option", { value }, label)));
  select.addEventListener("change", () => { choice = select.value; ctx.refreshNow(); });
  const count = h("span", { class: "muted" });
  const errorSlot = h("div");
  const messages = messageTable({ testid: "messages-table" });
  const root = h("section", { class: "view", testid: "view-messages" },
    h("div", { class: "toolbar" }, h("label", { class: "inline" }, "Show ", select), count),
    errorSlot,
    h("div", { class: "panel flush" }, messages.element));

  async function refresh() {
    const mine = ++generation;
    const states = CHOICES.find(([value]) => value === choice)[2];
    const asked = await askForView(ctx, errorSlot, () => ctx.call("Venus.ListMessages", states),
      { isCurrent: () => mine === generation });
    if (!asked) return;
    const list = [...(asked.answer ?? [])].reverse(); // newest first
    count.textContent = `${list.length} message${list.length === 1 ? "" : "s"}`;
    messages.update(list, choice === "pending"
      ? "The outbox is empty: every message is final."
      : "No message in this state.");
  }

  return { root, refresh, title: "Messages" };
}
