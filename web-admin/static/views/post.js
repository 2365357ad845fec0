// The PoSt view: for each miner, where its proving period stands on chain (current
// deadline, faults, recoveries); then the window PoSt runners' deadline records and the
// winning PoSt services' rounds, newest first. Empty tables say why they may be empty.

import { ago, badge, emptyRow, h, setChildren, syncRows, table, td } from "../dom.js";
import { askForView, viewError } from "./common.js";

const OUTCOME_TONES = { proven: "green", nothing_to_prove: "neutral", in_progress: "blue", missed: "red" };
const WINDOW_COLUMNS = ["Miner", "Deadline", "Open – close", "Outcome", "Partitions", "Proven", "Skipped", "Recoveries", "Proof time", "Messages", "Landed at", "Last error"];
const WINNING_COLUMNS = ["Miner", "Round", "Kind", "Sectors", "Asked", "Took", "Result"];

/** A deadline record with snake_case keys (as the manager sends them today) read with
 * the PascalCase names every other answer uses, so either spelling works. */
function pascal(record) {
  const out = {};
  for (const [key, value] of Object.entries(record)) {
    out[key.replace(/(^|_)([a-z])/g, (_, __, c) => c.toUpperCase())] = value;
  }
  // "proven", "nothing_to_prove"… (or "Proven", "NothingToProve")
  out.Outcome = String(out.Outcome ?? "").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
  return out;
}

function list(values) {
  return values?.length ? values.join(", ") : "";
}

export function createPostView(ctx) {
  const errorSlot = h("div");
  const miners = h("div", { class: "miners" });
  const windowGrid = table(WINDOW_COLUMNS, { testid: "window-post-table" });
  const winningGrid = table(WINNING_COLUMNS, { testid: "winning-post-table" });
  const root = h("section", { class: "view", testid: "view-post" },
    errorSlot,
    miners,
    h("div", { class: "panel flush" }, h("h3", { class: "panel-title" }, "Window PoSt deadlines"), windowGrid.element),
    h("div", { class: "panel flush" }, h("h3", { class: "panel-title" }, "Winning PoSt"), winningGrid.element));
  let askedForMiners = false;

  function minerPanel(info, faults, records) {
    const tile = (label, value, tone = "") => h("div", { class: `tile ${tone}` }, h("div", { class: "tile-value" }, value), h("div", { class: "tile-label" }, label));
    const outcomes = new Map();
    for (const r of records) if (r.Miner === info.Actor) outcomes.set(r.Index, r.Outcome);
    const faulty = new Map(); // deadline → faulty sectors there
    for (const f of faults) faulty.set(f.Deadline, (faulty.get(f.Deadline) ?? 0) + 1);
    const cells = [];
    for (let index = 0; index < info.Deadlines; index += 1) {
      const outcome = outcomes.get(index);
      const classes = ["dl"];
      if (outcome) classes.push(`tone-${OUTCOME_TONES[outcome] ?? "neutral"}`);
      if (faulty.has(index)) classes.push("faulty");
      if (index === info.Deadline) classes.push("current");
      const notes = [
        outcome ? outcome.replace(/_/g, " ") : null,
        faulty.has(index) ? `${faulty.get(index)} faulty sector${faulty.get(index) > 1 ? "s" : ""}` : null,
        index === info.Deadline ? "open now" : null,
      ].filter(Boolean);
      cells.push(h("i", { class: classes.join(" "), title: `deadline ${index}${notes.length ? `: ${notes.join(", ")}` : ""}` }));
    }
    return h("div", { class: "panel card miner-card", testid: "miner-proving", data: { miner: String(info.Actor) } },
      h("h3", {}, `t0${info.Actor}`, h("span", { class: "muted" }, ` · proving period from epoch ${info.PeriodStart}, next at ${info.NextPeriodStart}`)),
      h("div", { class: "totals" },
        tile("epoch", String(info.CurrentEpoch)),
        tile("deadline open", `${info.Deadline} / ${info.Deadlines}`),
        tile("open – close", `${info.Open} – ${info.Close}`),
        tile("challenge", String(info.Challenge)),
        tile("partitions in it", String(info.Partitions)),
        tile("faulty sectors", String(info.Faults), info.Faults > 0 ? "tone-red" : ""),
        tile("recovering", String(info.Recovering), info.Recovering > 0 ? "tone-yellow" : "")),
      h("div", { class: "deadline-strip" }, cells),
      h("div", { class: "strip-legend muted" },
        h("span", {}, h("i", { class: "dl current" }), "open now"),
        h("span", {}, h("i", { class: "dl tone-green" }), "proven"),
        h("span", {}, h("i", { class: "dl tone-red" }), "missed"),
        h("span", {}, h("i", { class: "dl faulty" }), "holds faulty sectors"),
        h("span", {}, h("i", { class: "dl tone-neutral" }), "nothing to prove")),
      faults.length
        ? h("p", { class: "error-text" }, `Faulty: ${faults.map((f) => `${f.Sector} (deadline ${f.Deadline}/partition ${f.Partition}${f.Recovering ? ", recovering" : ""})`).join(", ")}`)
        : null);
  }

  async function refresh() {
    const asked = await askForView(ctx, errorSlot, () => Promise.all([
      ctx.call("Venus.ProvingDeadlines"),
      ctx.call("Venus.ProvingWinning"),
    ]));
    if (!asked) return;
    const deadlines = (asked.answer[0] ?? []).map(pascal);
    const winning = asked.answer[1] ?? [];

    // No method lists the configured miners: use the ones seen in sectors and records.
    for (const r of deadlines) ctx.knownMiners.add(r.Miner);
    for (const r of winning) {
      const id = /^[ft]0(\d+)$/.exec(r.Miner ?? "");
      if (id) ctx.knownMiners.add(Number(id[1]));
    }
    if (ctx.knownMiners.size === 0 && !askedForMiners) {
      askedForMiners = true;
      const sectors = await ctx.call("Venus.ListSectors", "", null).catch((error) => {
        if (ctx.isGlobal(error)) throw error;
        return [];
      });
      for (const s of sectors ?? []) ctx.knownMiners.add(s.ID.Miner);
    }
    const actors = [...ctx.knownMiners].sort((a, b) => a - b);
    const proving = await Promise.all(actors.map(async (actor) => {
      try {
        const [info, faults] = await Promise.all([
          ctx.call("Venus.ProvingInfo", actor),
          ctx.call("Venus.ProvingFaults", actor),
        ]);
        return { info, faults: faults ?? [] };
      } catch (error) {
        if (ctx.isGlobal(error)) throw error;
        return { actor, error };
      }
    }));
    const minersSignature = JSON.stringify([proving.map((p) => p.error ? [p.actor, p.error.message] : p), deadlines.map((r) => [r.Miner, r.Index, r.Outcome])]);
    if (miners.dataset.signature !== minersSignature) {
      miners.dataset.signature = minersSignature;
      setChildren(miners, proving.map((p) => p.error
        ? h("div", { class: "panel card" }, h("h3", {}, `t0${p.actor}`), viewError(p.error))
        : minerPanel(p.info, p.faults, deadlines)));
    }

    const windowRows = [...deadlines].reverse();
    if (windowRows.length === 0) {
      windowGrid.tbody.replaceChildren(emptyRow(WINDOW_COLUMNS.length,
        "No deadline record: no window PoSt runner works in this manager (start it with `daemon run --poster`), or no deadline has opened since it started."));
    } else {
      syncRows(windowGrid.tbody, windowRows, (r) => `${r.Miner}/${r.PeriodStart}/${r.Index}`, (r) => h("tr", { testid: "window-post-row" },
        td(`t0${r.Miner}`, { class: "mono" }),
        td(String(r.Index), { class: "num" }),
        td(`${r.Open} – ${r.Close}`, { class: "num nowrap" }),
        td(badge(String(r.Outcome).replace(/_/g, " "), OUTCOME_TONES[r.Outcome] ?? "neutral")),
        td(list(r.Partitions), { class: "num wrap" }),
        td(String(r.SectorsProven), { class: "num" }),
        td(r.SectorsSkipped?.length ? h("span", { class: "error-text" }, list(r.SectorsSkipped)) : "", { class: "num wrap" }),
        td(list(r.RecoveriesDeclared), { class: "num wrap" }),
        td(r.ProofMilliseconds === null || r.ProofMilliseconds === undefined ? "" : `${(r.ProofMilliseconds / 1000).toFixed(1)} s`, { class: "num" }),
        td(r.Messages?.length ? h("span", {}, r.Messages.map((cid) => h("code", { class: "cid", title: cid }, cid))) : "", { class: "wrap" }),
        td(r.LandedEpoch === null || r.LandedEpoch === undefined ? "" : String(r.LandedEpoch), { class: "num" }),
        td(r.LastError ? h("span", { class: "error-text" }, r.LastError) : "", { class: "wrap" })));
    }

    const winningRows = [...winning].sort((a, b) => b.AskedAt - a.AskedAt);
    if (winningRows.length === 0) {
      winningGrid.tbody.replaceChildren(emptyRow(WINNING_COLUMNS.length,
        "No winning PoSt round: no miner here has [Miners.Proof] enabled with `daemon run --miner`, or no block producer has asked yet."));
    } else {
      syncRows(winningGrid.tbody, winningRows, (r) => `${r.Miner}/${r.Round}/${r.WarmUp}/${r.AskedAt}`, (r) => h("tr", { testid: "winning-post-row" },
        td(r.Miner, { class: "mono" }),
        td(String(r.Round), { class: "num" }),
        td(r.WarmUp ? badge("warm-up", "neutral") : badge("round", "blue")),
        td(list(r.Sectors), { class: "num wrap" }),
        td(ago(r.AskedAt)),
        td(`${(r.ElapsedMs / 1000).toFixed(2)} s`, { class: "num" }),
        td(r.Error ? h("span", { class: "error-text" }, r.Error) : badge("proof verified", "green"), { class: "wrap" })));
    }
  }

  return { root, refresh, title: "PoSt" };
}
