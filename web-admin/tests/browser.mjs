// Browser test of the admin page against a running sector manager and sealing worker
// (for example `sealcluster devnet --keep-running`): drives Debian's Chromium through
// playwright-core, checks what an operator relies on, and cross-checks thread pauses with
// the worker's own admin API. One line per check; exits non-zero at the first failure.
//
// Env: ADMIN_URL, READ_TOKEN, ADMIN_TOKEN, WORKER_NAME, WORKER_ADMIN_URL,
// WORKER_ADMIN_TOKEN; optional CHROMIUM (default /usr/bin/chromium), SCREENSHOT_DIR.

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === "") {
    console.error(`FAIL setup: the environment variable ${name} is not set`);
    process.exit(2);
  }
  return value;
};

const ADMIN_URL = env("ADMIN_URL");
const READ_TOKEN = env("READ_TOKEN");
const ADMIN_TOKEN = env("ADMIN_TOKEN");
const WORKER_NAME = env("WORKER_NAME");
const WORKER_ADMIN_URL = env("WORKER_ADMIN_URL");
const WORKER_ADMIN_TOKEN = env("WORKER_ADMIN_TOKEN");
const CHROMIUM = env("CHROMIUM", "/usr/bin/chromium");
const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR || "";
const THREAD = 0;

const started = Date.now();
let browser;

class CheckFailed extends Error {}

function fail(message) {
  throw new CheckFailed(message);
}

async function check(name, body) {
  const t0 = Date.now();
  try {
    const detail = await body();
    console.log(`ok   ${name}${detail ? ` — ${detail}` : ""} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (error) {
    const message = error instanceof CheckFailed ? error.message : (error?.stack ?? String(error));
    console.log(`FAIL ${name}: ${message}`);
    await browser?.close().catch(() => {});
    process.exit(1);
  }
}

async function until(what, timeoutMs, probe, intervalMs = 500) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await probe();
    if (last) return last;
    if (Date.now() > deadline) fail(`${what} (waited ${timeoutMs / 1000} s)`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Thread THREAD as the worker's own admin API lists it. */
async function workerThread() {
  const response = await fetch(WORKER_ADMIN_URL, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${WORKER_ADMIN_TOKEN}` },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "VenusWorker.WorkerList", params: [] }),
  });
  if (!response.ok) fail(`the worker's admin API answered HTTP ${response.status}`);
  const answer = await response.json();
  if (answer.error) fail(`VenusWorker.WorkerList: ${answer.error.message}`);
  const thread = answer.result.find((t) => t.index === THREAD);
  if (!thread) fail(`the worker has no thread ${THREAD}`);
  return thread;
}

async function workerCall(method, params) {
  const response = await fetch(WORKER_ADMIN_URL, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${WORKER_ADMIN_TOKEN}` },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  return response.json();
}

const isPaused = (thread) => thread.thread_state?.state === "Paused";

async function screenshot(page, name) {
  if (!SCREENSHOT_DIR) return;
  await page.waitForTimeout(300); // let the last refresh settle
  await page.screenshot({ path: join(SCREENSHOT_DIR, name) });
}

async function main() {
  if (SCREENSHOT_DIR) mkdirSync(SCREENSHOT_DIR, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: "dark" });
  // Record CSP violations too (they also reach the console, but this names them).
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (event) => {
      window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
    });
  });
  const page = await context.newPage();
  const problems = [];
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("requestfailed", (request) => problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`));

  const card = () => page.locator(`[data-testid="worker-card"][data-worker="${WORKER_NAME}"]`);
  const row = () => card().locator(`[data-testid="thread-row"][data-index="${THREAD}"]`);

  async function signIn(token) {
    await page.getByTestId("signin").waitFor({ state: "visible", timeout: 10000 });
    await page.getByTestId("token-input").fill(token);
    await page.getByTestId("signin-submit").click();
    await page.getByTestId("tabs").waitFor({ state: "visible", timeout: 10000 });
  }

  await check("setup: thread 0 of the worker starts unpaused", async () => {
    let thread = await workerThread();
    if (!isPaused(thread)) return `it is ${thread.thread_state?.state}`;
    const answer = await workerCall("VenusWorker.WorkerResume", [THREAD, null]);
    thread = await until("thread 0 to resume", 20000, async () => { const t = await workerThread(); return isPaused(t) ? null : t; });
    return `it was paused by an earlier run; resumed (${JSON.stringify(answer.result)})`;
  });

  let sector;
  await check("a. the page loads, signs in with the read token and lists a sealing sector", async () => {
    const response = await page.goto(ADMIN_URL);
    if (!response.ok()) fail(`GET ${ADMIN_URL} answered HTTP ${response.status()}`);
    const csp = response.headers()["content-security-policy"] ?? "";
    if (!csp.includes("default-src 'self'")) fail(`the page is served without the expected CSP (got ${JSON.stringify(csp)})`);
    await signIn(READ_TOKEN);
    await page.getByTestId("tab-sectors").click();
    await page.getByTestId("phase-sealing").click();
    const first = page.locator('[data-testid="sector-row"][data-phase="sealing"]').first();
    try {
      await first.waitFor({ state: "visible", timeout: 60000 });
    } catch {
      fail("no sector with phase sealing appeared in the sectors table within 60 s");
    }
    sector = await first.getAttribute("data-sector");
    const height = await page.getByTestId("chain-height").textContent();
    if (!/^\d+$/.test(height ?? "")) fail(`the header shows no chain height (${JSON.stringify(height)})`);
    const version = await page.getByTestId("manager-version").textContent();
    if (!version) fail("the header shows no manager version");
    // The list screenshot shows every phase.
    await page.getByTestId("phase-all").click();
    await page.locator('[data-testid="sector-row"]').first().waitFor();
    await screenshot(page, "admin-sectors.png");
    return `sector ${sector} is sealing; height ${height}, ${version}`;
  });

  await check("b. opening that sector shows its history", async () => {
    const [miner, number] = sector.split("/");
    // It may have finished sealing since: find it by name in every phase.
    await page.getByTestId("sector-filter").fill(`s-t0${miner}-${number}`);
    await page.locator(`[data-testid="sector-row"][data-sector="${sector}"]`).click();
    await page.getByTestId("view-sector").waitFor({ state: "visible", timeout: 10000 });
    const title = await page.getByTestId("sector-title").textContent();
    if (title !== `s-t0${miner}-${number}`) fail(`the detail shows ${JSON.stringify(title)}, not s-t0${miner}-${number}`);
    const events = page.getByTestId("event-row");
    await events.first().waitFor({ state: "visible", timeout: 10000 });
    const count = await events.count();
    const kinds = await events.evaluateAll((rows) => rows.map((r) => r.dataset.kind));
    await screenshot(page, "admin-sector-detail.png");
    return `${count} event rows (${kinds.join(", ")})`;
  });

  await check("c. with the read token, Pause is refused and the thread stays unpaused", async () => {
    await page.getByTestId("tab-workers").click();
    await row().waitFor({ state: "visible", timeout: 15000 });
    await row().getByTestId("thread-pause").click();
    const message = row().getByTestId("thread-message");
    await until("the page to show the manager's refusal next to thread 0", 15000, async () => {
      const text = (await message.count()) ? await message.textContent() : "";
      return text.includes("missing permission to invoke") ? text : null;
    }, 200);
    const shown = await message.textContent();
    await page.waitForTimeout(1500);
    const thread = await workerThread();
    if (isPaused(thread)) fail("the worker's admin API reports thread 0 paused after a read-only Pause");
    if ((await row().getAttribute("data-paused")) !== "false") fail("the page shows thread 0 paused");
    const role = await page.getByTestId("token-role").getAttribute("data-role");
    if (role !== "read") fail(`the role badge says ${JSON.stringify(role)} after the refusal, not "read"`);
    return `page says ${JSON.stringify(shown.slice(0, 80))}…; worker: ${thread.thread_state?.state}`;
  });

  await check("d. with the admin token, Pause then Resume reach the worker and the page shows both", async () => {
    await page.getByTestId("sign-out").click();
    await signIn(ADMIN_TOKEN);
    await page.getByTestId("tab-workers").click();
    await row().waitFor({ state: "visible", timeout: 15000 });

    // A thread takes commands between steps; one that cannot pause right now answers
    // false, so press again (a few times) until the worker takes it.
    const press = async (button, wanted, verb) => {
      for (let attempt = 1; attempt <= 5; attempt += 1) {
        await row().getByTestId(button).click();
        const note = await until(`the page to show the outcome of ${verb}`, 45000, async () => {
          const message = row().getByTestId("thread-message");
          const text = (await message.count()) ? await message.textContent() : "";
          return text && !text.includes("…") ? text : null;
        }, 200);
        if (note.includes("accepted")) return attempt;
        if (!note.includes("did not")) fail(`${verb} failed: ${note}`);
        await page.waitForTimeout(1000);
      }
      fail(`the worker declined ${verb} five times`);
    };

    const pauses = await press("thread-pause", true, "Pause");
    await until("the worker's admin API to report thread 0 paused", 20000, async () => isPaused(await workerThread()));
    await until("the page to show thread 0 paused", 10000, async () => (await row().getAttribute("data-paused")) === "true");
    const role = await page.getByTestId("token-role").getAttribute("data-role");
    if (role !== "admin") fail(`the role badge says ${JSON.stringify(role)} after an accepted Pause, not "admin"`);
    await screenshot(page, "admin-workers.png");

    const resumes = await press("thread-resume", false, "Resume");
    await until("the worker's admin API to report thread 0 not paused", 20000, async () => !isPaused(await workerThread()));
    await until("the page to show thread 0 not paused", 10000, async () => (await row().getAttribute("data-paused")) === "false");
    return `paused (${pauses} press${pauses > 1 ? "es" : ""}) and resumed (${resumes} press${resumes > 1 ? "es" : ""})`;
  });

  await check("PoSt and Messages views load", async () => {
    await page.getByTestId("tab-post").click();
    await page.getByTestId("view-post").waitFor({ state: "visible" });
    await page.locator('[data-testid="window-post-table"] tbody tr').first().waitFor();
    await page.locator('[data-testid="winning-post-table"] tbody tr').first().waitFor();
    await page.waitForTimeout(500);
    await screenshot(page, "admin-post.png");
    await page.getByTestId("tab-messages").click();
    await page.locator('[data-testid="messages-table"] tbody tr').first().waitFor();
    await page.getByTestId("tab-stores").click();
    await page.locator('[data-testid="store-row"]').first().waitFor();
    const banner = await page.getByTestId("error-banner").isVisible();
    if (banner) fail(`the error banner is shown: ${await page.getByTestId("error-banner").textContent()}`);
    return "";
  });

  await check("e. no console error, page error or CSP violation", async () => {
    const violations = await page.evaluate(() => window.__cspViolations ?? []);
    const all = [...problems, ...violations.map((v) => `CSP violation: ${v}`)];
    if (all.length) fail(all.join("; "));
    return "";
  });

  await browser.close();
  console.log(`all checks passed in ${((Date.now() - started) / 1000).toFixed(1)} s${SCREENSHOT_DIR ? `; screenshots in ${SCREENSHOT_DIR}` : ""}`);
}

main().catch(async (error) => {
  console.log(`FAIL unexpected: ${error?.stack ?? error}`);
  await browser?.close().catch(() => {});
  process.exit(1);
});
