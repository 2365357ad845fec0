// The Workers view: every worker that pinged the manager, with its sealing threads as
// the worker's own admin API lists them (reached through the manager), and Pause /
// Resume per thread. The buttons are always shown: the manager decides whether the
// token may use them, and its answer (or refusal) is written next to the thread.

import { ago, badge, emptyRow, h, nowSeconds, setChildren, syncRows, table, td } from "../dom.js";
import { askForView, viewError } from "./common.js";

const COLUMNS = ["#", "Sector", "Job state", "Activity", "Paused", "Last error", "Done / aborted", "Sealing store", "Plan", "Actions"];
const ACTIVITY_TONES = { Running: "green", Waiting: "blue", Paused: "yellow", Idle: "neutral" };
const STALE_PING_SECONDS = 60;

/** The last part of a sealing store's path: "/data/sealing-store-0" → "sealing-store-0". */
function storeName(location) {
  if (!location) return "";
  const parts = location.split("/").filter(Boolean);
  return parts.length ? parts[parts.length - 1] : location;
}

function threadSector(jobId) {
  // "s-t01000-12" → {Miner: 1000, Number: 12}
  const match = /^s-t0(\d+)-(\d+)$/.exec(jobId ?? "");
  return match ? { Miner: Number(match[1]), Number: Number(match[2]) } : null;
}

export function createWorkersView(ctx) {
  const cards = new Map(); // worker name → {element, tbody, meta, errorSlot}
  const notes = new Map(); // "worker\u0000index" → {tone, text}: the last action's outcome
  const errorSlot = h("div");
  const list = h("div", { class: "workers" });
  const root = h("section", { class: "view", testid: "view-workers" }, errorSlot, list);

  async function act(worker, index, verb) {
    const key = `${worker}\u0000${index}`;
    notes.set(key, { tone: "pending", text: `${verb === "pause" ? "pausing" : "resuming"}… (a thread takes commands between two steps)` });
    repaintRows(worker);
    try {
      const accepted = verb === "pause"
        ? await ctx.slowCall("Venus.WorkerThreadPause", worker, index)
        : await ctx.slowCall("Venus.WorkerThreadResume", worker, index, null);
      ctx.learnRole("admin");
      notes.set(key, accepted
        ? { tone: "ok", text: verb === "pause" ? "pause accepted" : "resume accepted" }
        : { tone: "warn", text: verb === "pause"
          ? "the worker did not pause it (already paused, or between steps it cannot stop)"
          : "the worker did not resume it (it is not paused)" });
    } catch (error) {
      if (error.kind === "rpc" && error.message.startsWith("missing permission to invoke")) {
        ctx.learnRole("read");
        notes.set(key, { tone: "error", text: `Refused by the manager: ${error.message}` });
      } else {
        notes.set(key, { tone: "error", text: `${verb} failed: ${error.message}` });
      }
    }
    repaintRows(worker);
    ctx.refreshNow();
  }

  const lastThreads = new Map(); // worker → last thread list, to repaint a note at once

  function repaintRows(worker) {
    const threads = lastThreads.get(worker);
    const entry = cards.get(worker);
    if (threads && entry) paintThreads(worker, entry, threads);
  }

  function buildRow(worker, t) {
    const activity = t.thread_state ?? {};
    const paused = activity.state === "Paused";
    const sector = threadSector(t.job_id);
    const note = notes.get(`${worker}\u0000${t.index}`);
    const since = activity.elapsed === undefined ? null : nowSeconds() - activity.elapsed;
    const pause = h("button", {
      type: "button", class: `small ${paused ? "" : "primary"}`, testid: "thread-pause",
      on: { click: () => act(worker, t.index, "pause") },
    }, "Pause");
    const resume = h("button", {
      type: "button", class: `small ${paused ? "primary" : ""}`, testid: "thread-resume",
      on: { click: () => act(worker, t.index, "resume") },
    }, "Resume");
    if (note?.tone === "pending") { pause.disabled = true; resume.disabled = true; }
    return h("tr", { testid: "thread-row", class: paused ? "paused-row" : "", data: { index: String(t.index), paused: String(paused) } },
      td(String(t.index), { class: "num" }),
      td(sector
        ? h("a", { href: `#/sectors/${sector.Miner}/${sector.Number}`, class: "mono strong nowrap" }, t.job_id)
        : (t.job_id ?? h("span", { class: "muted" }, "no sector"))),
      td(t.job_state ? h("span", { class: "mono" }, t.job_state) : ""),
      td(h("span", { class: "activity" },
        badge(activity.state ?? "?", ACTIVITY_TONES[activity.state] ?? "neutral"),
        activity.proc ? h("span", { class: "mono" }, ` ${activity.proc}`) : null,
        activity.for ? h("span", { class: "muted" }, ` for ${activity.for}`) : null,
        since !== null ? h("span", { class: "muted" }, " · since ", ago(since)) : null)),
      td(paused ? badge("paused", "yellow", { testid: "thread-paused" }) : h("span", { class: "muted", testid: "thread-paused" }, "no")),
      td(t.last_error ? h("span", { class: "error-text" }, t.last_error) : "", { class: "wrap" }),
      td(h("span", { title: "sectors finished / aborted by this thread" }, `${t.finished ?? 0}`, h("span", { class: "muted" }, ` / ${t.aborted ?? 0}`)), { class: "num nowrap" }),
      td(h("span", { class: "mono", title: t.location ?? "" }, storeName(t.location)), { class: "nowrap" }),
      td(t.plan ?? ""),
      td(h("div", { class: "actions" }, pause, resume,
        note ? h("div", { class: `note note-${note.tone}`, testid: "thread-message", role: note.tone === "error" ? "alert" : "status" }, note.text) : null)));
  }

  function paintThreads(worker, entry, threads) {
    if (threads.length === 0) {
      entry.tbody.replaceChildren(emptyRow(COLUMNS.length, "This worker has no sealing thread."));
      return;
    }
    const signature = (t) => {
      const { elapsed, ...activity } = t.thread_state ?? {};
      return JSON.stringify({ ...t, thread_state: activity, note: notes.get(`${worker}\u0000${t.index}`) ?? null });
    };
    syncRows(entry.tbody, threads, (t) => t.index, (t) => buildRow(worker, t), signature);
    // Keep "since" right without rebuilding rows: elapsed changes at every refresh.
    threads.forEach((t, i) => {
      const since = entry.tbody.children[i]?.querySelector("[data-since]");
      const elapsed = t.thread_state?.elapsed;
      if (since && elapsed !== undefined) since.dataset.since = String(nowSeconds() - elapsed);
    });
  }

  function cardFor(name) {
    let entry = cards.get(name);
    if (entry) return entry;
    const grid = table(COLUMNS, { testid: "threads-table" });
    const meta = h("div", { class: "worker-meta" });
    const summary = h("div", { class: "worker-summary" });
    const cardError = h("div");
    const element = h("div", { class: "panel flush worker-card", testid: "worker-card", data: { worker: name } },
      h("div", { class: "worker-head" }, h("h3", { class: "worker-name" }, name), meta, summary),
      cardError,
      grid.element);
    entry = { element, tbody: grid.tbody, meta, summary, cardError };
    cards.set(name, entry);
    return entry;
  }

  function paintWorker(info, threadsOrError) {
    const name = info.Info.Name;
    const entry = cardFor(name);
    const stale = nowSeconds() - info.LastPing > STALE_PING_SECONDS;
    const metaSignature = JSON.stringify([info.Info.Dest, info.Info.Version, stale]);
    if (entry.metaSignature !== metaSignature) {
      entry.metaSignature = metaSignature;
      setChildren(entry.meta,
        h("span", { class: "mono" }, info.Info.Dest ?? ""),
        h("span", { class: "muted" }, info.Info.Version ?? ""),
        h("span", {}, "last ping ", ago(info.LastPing, { testid: "worker-last-ping" })),
        stale ? badge("no recent ping", "red") : null);
    } else {
      const ping = entry.meta.querySelector("[data-since]");
      if (ping) ping.dataset.since = String(info.LastPing);
    }
    const sum = info.Info.Summary ?? {};
    const summarySignature = JSON.stringify(sum);
    if (entry.summarySignature !== summarySignature) {
      entry.summarySignature = summarySignature;
      const stat = (label, value, tone) => h("span", { class: `stat-chip ${value > 0 && tone ? `tone-${tone}` : ""}` },
        h("b", {}, String(value ?? 0)), ` ${label}`);
      setChildren(entry.summary,
        stat("threads", sum.Threads), stat("running", sum.Running, "green"), stat("waiting", sum.Waiting, "blue"),
        stat("paused", sum.Paused, "yellow"), stat("errors", sum.Errors, "red"), stat("empty", sum.Empty));
    }
    if (threadsOrError instanceof Error) {
      setChildren(entry.cardError, viewError(threadsOrError));
      lastThreads.delete(name);
      entry.tbody.replaceChildren(emptyRow(COLUMNS.length, "The worker's threads could not be read."));
    } else {
      setChildren(entry.cardError);
      lastThreads.set(name, threadsOrError);
      paintThreads(name, entry, threadsOrError);
    }
    return entry.element;
  }

  async function refresh() {
    const asked = await askForView(ctx, errorSlot, () => ctx.call("Venus.WorkerPingInfoList"));
    if (!asked) return;
    const workers = [...(asked.answer ?? [])].sort((a, b) => a.Info.Name.localeCompare(b.Info.Name));
    const threadLists = await Promise.all(workers.map((w) =>
      ctx.call("Venus.WorkerThreads", w.Info.Name).catch((error) => {
        if (ctx.isGlobal(error)) throw error;
        return error;
      })));
    if (workers.length === 0) {
      cards.clear();
      list.replaceChildren(h("div", { class: "panel empty" }, "No worker has pinged this manager yet."));
      return;
    }
    const elements = workers.map((w, i) => paintWorker(w, threadLists[i]));
    for (const name of [...cards.keys()]) {
      if (!workers.some((w) => w.Info.Name === name)) cards.delete(name);
    }
    const same = elements.length === list.children.length && elements.every((e, i) => list.children[i] === e);
    if (!same) list.replaceChildren(...elements);
  }

  return { root, refresh, title: "Workers" };
}
