// Pieces several views draw the same way: a sector's phase badge, its progress ladder,
// an outbox message table, and the inline error line a view shows when its own call
// failed (the global banner is only for an unreachable manager or a refused token).

import { ago, badge, emptyRow, h, setChildren, syncRows, table, td } from "../dom.js";

const PHASE_TONES = { sealing: "blue", finalized: "green", aborted: "red" };

export function phaseBadge(phase) {
  return badge(phase, PHASE_TONES[phase] ?? "neutral", { testid: "phase" });
}

/** The manager's progress words, in the order a sector goes through them. */
export const PROGRESS_STEPS = [
  "allocated", "ticket assigned", "precommit waiting", "precommit sent",
  "seed assigned", "proof waiting", "proof sent",
];

/** A ladder of small segments, filled up to the sector's progress, and its words. */
export function progressLadder(summary) {
  const reached = summary.Phase === "finalized"
    ? PROGRESS_STEPS.length
    : PROGRESS_STEPS.indexOf(summary.Progress) + 1;
  const tone = summary.Phase === "aborted" ? "red" : summary.Phase === "finalized" ? "green" : "blue";
  const segments = PROGRESS_STEPS.map((step, index) =>
    h("i", { class: index < reached ? `on tone-${tone}` : "", title: step }));
  return h("span", { class: "ladder", title: summary.Progress },
    h("span", { class: "segments" }, segments),
    h("span", { class: "ladder-text" }, summary.Phase === "finalized" ? "finalized" : summary.Progress));
}

const MESSAGE_TONES = { created: "neutral", pushed: "blue", executed: "yellow", final: "green", failed: "red" };

export const MESSAGE_COLUMNS = ["#", "Purpose", "State", "Sectors", "Signed CID", "Pushes", "Created", "Executed at", "Exit", "Receipt / last error"];

/** A table of outbox messages, keyed by id. */
export function messageTable(attrs = {}) {
  const grid = table(MESSAGE_COLUMNS, attrs);
  return {
    element: grid.element,
    update(messages, emptyText) {
      if (messages.length === 0) {
        grid.tbody.replaceChildren(emptyRow(MESSAGE_COLUMNS.length, emptyText));
        return;
      }
      syncRows(grid.tbody, messages, (m) => m.Id, (m) => h("tr", { testid: "message-row" },
        td(String(m.Id), { class: "num" }),
        td(m.Purpose.replace(/_/g, " ")),
        td(badge(m.State, MESSAGE_TONES[m.State] ?? "neutral")),
        td(m.Sectors?.length ? m.Sectors.join(", ") : "", { class: "num wrap" }),
        td(m.SignedCid ? h("code", { class: "cid", title: m.SignedCid }, m.SignedCid) : ""),
        td(String(m.PushAttempts), { class: "num" }),
        td(ago(m.CreatedAt)),
        td(m.ExecutedHeight === null || m.ExecutedHeight === undefined ? "" : String(m.ExecutedHeight), { class: "num" }),
        td(m.ExitCode === null || m.ExitCode === undefined ? "" : badge(String(m.ExitCode), m.ExitCode === 0 ? "green" : "red")),
        td(m.LastError ? h("span", { class: "error-text" }, m.LastError) : (m.Receipt ?? ""), { class: "wrap" }),
      ));
    },
  };
}

/**
 * Asks the manager for what a view paints, through `ask()`. Answers `{ answer }`, or null
 * when there is nothing to paint: a newer request of the view superseded this one
 * (`isCurrent()` turned false), or the call failed, and then the failure is shown in
 * `errorSlot` and `onFailure()` runs (a lost session or an unreachable manager is thrown
 * on, for the page's banner). An answer clears the slot.
 */
export async function askForView(ctx, errorSlot, ask, { isCurrent = () => true, onFailure = () => {} } = {}) {
  let answer;
  try {
    answer = await ask();
  } catch (error) {
    if (!isCurrent()) return null;
    if (ctx.isGlobal(error)) throw error;
    setChildren(errorSlot, viewError(error));
    onFailure();
    return null;
  }
  if (!isCurrent()) return null;
  setChildren(errorSlot);
  return { answer };
}

/** The line a view shows when one of its calls failed. */
export function viewError(error) {
  return h("div", { class: "view-error", testid: "view-error", role: "alert" },
    h("strong", {}, error.method ? `${error.method}: ` : ""), error.message);
}
