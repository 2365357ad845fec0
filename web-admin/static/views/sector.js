// The Sector detail view: one sector's summary, the chain values it got (ticket,
// precommit, seed, proof), its latest report and failure, the manager's full event
// history with times, its outbox messages, and its trace id linked to the tracing UI
// when the manager is configured with a TraceUrl.

import { ago, badge, emptyRow, field, formatDuration, formatTime, h, hex, sealProofName, sectorName, setChildren, syncRows, table, td } from "../dom.js";
import { askForView, messageTable, phaseBadge, progressLadder } from "./common.js";

const EVENT_TONES = {
  allocated: "neutral", ticket: "blue", seed: "blue", pre_commit_submitted: "blue",
  proof_submitted: "blue", persisted: "blue", message_created: "yellow",
  finalized: "green", aborted: "red", restored: "yellow",
  "worker state": "neutral", "worker failure": "red",
};

/** Event kinds whose detail reads as an error. */
const ERROR_KINDS = new Set(["aborted", "worker failure"]);

/** A link to the trace when TraceUrl is set (and is a web address), else the bare id. */
export function traceLink(traceId, traceUrl) {
  if (!traceId) return "";
  const code = h("code", { class: "mono", testid: "trace-id" }, traceId);
  if (!traceUrl || !/^https?:\/\//i.test(traceUrl)) return code;
  const href = traceUrl.split("{trace_id}").join(encodeURIComponent(traceId));
  return h("a", { href, target: "_blank", rel: "noopener noreferrer", testid: "trace-link" }, code, " ↗");
}

function yesNo(value, yesTone = "yellow") {
  if (value === null || value === undefined) return "";
  return value ? badge("yes", yesTone) : badge("no", "neutral");
}

function card(title, testid, ...body) {
  return h("div", { class: "panel card", testid }, h("h3", {}, title), ...body);
}

function kv(...pairs) {
  return h("dl", { class: "kv" }, pairs);
}

export function createSectorView(ctx) {
  let current = null; // {miner, number}
  let generation = 0;
  let painted = ""; // the answer last drawn: an unchanged answer keeps the DOM (and a selection)

  const back = h("a", { href: "#/sectors", class: "back", testid: "back-to-sectors" }, "← Sectors");
  const title = h("h2", { class: "title mono", testid: "sector-title" });
  const headline = h("div", { class: "headline" });
  const errorSlot = h("div");
  const cards = h("div", { class: "cards" });
  const events = table(["#", "Time", "After", "Kind", "Detail"], { testid: "events-table" });
  const eventCount = h("span", { class: "muted count" });
  const messages = messageTable({ testid: "sector-messages-table" });
  const body = h("div", { class: "detail-body" },
    cards,
    h("div", { class: "panel flush" }, h("h3", { class: "panel-title" }, "History ", eventCount), events.element),
    h("div", { class: "panel flush" }, h("h3", { class: "panel-title" }, "Messages"), messages.element));

  const root = h("section", { class: "view", testid: "view-sector" },
    h("div", { class: "detail-head" }, back, title, headline),
    errorSlot,
    body);

  function show(miner, number) {
    if (current && current.miner === miner && current.number === number) return;
    current = { miner, number };
    painted = "";
    title.textContent = sectorName({ Miner: miner, Number: number });
    setChildren(headline);
    setChildren(errorSlot);
    setChildren(cards);
    eventCount.textContent = "";
    events.tbody.replaceChildren(emptyRow(5, "Loading…"));
    messages.update([], "Loading…");
  }

  function paint(detail) {
    const s = detail.Summary;
    setChildren(headline,
      phaseBadge(s.Phase),
      s.LatestState ? h("span", { class: "mono state" }, s.LatestState) : null,
      progressLadder(s),
      h("span", { class: "muted" }, "updated ", ago(s.UpdatedAt)));

    const latest = detail.LatestState;
    const failure = latest?.Failure;
    const summaryCard = card("Summary", "sector-summary", kv(
      field("Miner", `t0${s.ID.Miner}`),
      field("Number", String(s.ID.Number)),
      field("Seal proof", sealProofName(s.ProofType)),
      field("Phase", phaseBadge(s.Phase)),
      field("Progress", s.Progress),
      field("Worker", s.Worker ?? ""),
      field("Persisted in", s.Persisted ?? ""),
      field("Updated", `${formatTime(s.UpdatedAt)}`),
      s.AbortReason ? field("Abort reason", h("span", { class: "error-text" }, s.AbortReason)) : null,
      field("Trace", "TraceId" in detail
        ? traceLink(detail.TraceId, ctx.settings.TraceUrl)
        : h("span", { class: "muted" }, "not reported by this manager")),
    ));
    const reportCard = card("Latest report", "sector-latest", latest ? kv(
      field("State", h("span", { class: "transition" },
        h("span", { class: "mono" }, latest.StateChange?.Prev ?? "?"),
        h("span", { class: "muted" }, ` —${latest.StateChange?.Event ?? "?"}→ `),
        h("span", { class: "mono strong" }, latest.StateChange?.Next ?? "?"))),
      field("Worker", latest.Worker?.Instance ?? ""),
      field("Location", latest.Worker?.Location ? h("span", { class: "mono wrap" }, latest.Worker.Location) : ""),
      field("Failure", failure
        ? h("span", { class: "failure", testid: "sector-failure" }, badge(failure.Level, "red"), " ", failure.Desc)
        : h("span", { class: "muted" }, "none")),
    ) : h("p", { class: "muted" }, "No worker has reported a state for this sector yet."));

    const ticket = detail.Ticket;
    const pre = detail.PreCommit;
    const seed = detail.Seed;
    const proof = detail.Proof;
    const chainCard = card("On chain", "sector-chain", kv(
      field("Ticket", ticket ? h("span", {}, `epoch ${ticket.Epoch} `, hex(ticket.Ticket)) : ""),
      field("CommR", pre ? hex(pre.CommR) : ""),
      field("CommD", pre ? hex(pre.CommD) : ""),
      field("PreCommit", pre ? h("span", {},
        `submitted ${formatTime(pre.SubmittedAt)} · ticket epoch ${pre.TicketEpoch} · `,
        pre.Message !== null && pre.Message !== undefined ? `message #${pre.Message}` : "no message yet",
        pre.NeedSend ? [" ", badge("to send", "yellow")] : null) : ""),
      field("Seed", seed ? h("span", {}, `epoch ${seed.Epoch} `, hex(seed.Seed)) : ""),
      field("Proof", proof ? h("span", {},
        `${proof.Bytes} bytes · submitted ${formatTime(proof.SubmittedAt)} · `,
        proof.Message !== null && proof.Message !== undefined ? `message #${proof.Message}` : "no message yet",
        proof.NeedSend ? [" ", badge("to send", "yellow")] : null) : ""),
    ));
    setChildren(cards, summaryCard, reportCard, chainCard);

    const list = detail.Events ?? [];
    eventCount.textContent = `${list.length} event${list.length === 1 ? "" : "s"}`;
    if (list.length === 0) {
      events.tbody.replaceChildren(emptyRow(5, "No event recorded."));
    } else {
      const first = list[0].At;
      const items = list.map((event, index) => ({ ...event, index, previous: index > 0 ? list[index - 1].At : null, first }));
      syncRows(events.tbody, items, (e) => e.index, (e) => h("tr", { testid: "event-row", data: { kind: e.Kind } },
        td(String(e.index + 1), { class: "num muted" }),
        td(formatTime(e.At), { class: "mono nowrap" }),
        td(e.previous === null ? "start" : `+${formatDuration(e.At - e.previous)}`, { class: "num muted", title: `${formatDuration(e.At - e.first)} after allocation` }),
        td(badge(e.Kind.replace(/_/g, " "), EVENT_TONES[e.Kind] ?? "neutral")),
        td(e.Detail ? h("span", { class: ERROR_KINDS.has(e.Kind) ? "error-text" : "" }, e.Detail) : "", { class: "wrap" })));
    }
    messages.update(detail.Messages ?? [], "No message carries this sector yet.");
  }

  async function refresh() {
    if (!current) return;
    const mine = ++generation;
    const { miner, number } = current;
    const asked = await askForView(ctx, errorSlot, () => ctx.call("Venus.SectorState", { Miner: miner, Number: number }), {
      isCurrent: () => mine === generation,
      onFailure: () => {
        body.hidden = true;
        painted = "";
      },
    });
    if (!asked) return;
    const detail = asked.answer;
    body.hidden = false;
    const signature = JSON.stringify(detail);
    if (signature === painted) return;
    painted = signature;
    paint(detail);
  }

  return { root, refresh, show, title: "Sector" };
}
