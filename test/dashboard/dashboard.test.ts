// The operator dashboard end to end: a real Conveyor (HTTP, WebSocket, worker pool, PostgreSQL)
// serving a fresh build of dashboard/, driven in Debian's headless Chromium by playwright-core.
// Screenshots go to test-results/dashboard/ (git-ignored).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { JobHandler } from "../../src/handlers/registry.js";
import { userMessage } from "../../src/jobs/error-categories.js";
import { PermanentJobError } from "../../src/jobs/job-errors.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { tokenFor } from "../support/graphql-client.js";
import { enqueue, PARKED, statusOf } from "../graphql/helpers.js";
import { buildDashboard } from "./build.js";
import { StageGates } from "./stage-gates.js";

const CHROMIUM = "/usr/bin/chromium";
// The flags this machine's Chromium needs: no sandbox as root, no GPU, and no background
// connections to hosts a closed network refuses.
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const SCREENSHOTS = fileURLToPath(new URL("../../test-results/dashboard/", import.meta.url));
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
// Waits, not timed assertions: the machine is shared and may be slow.
const WAIT_MS = 60_000;

const chromiumMissing = !existsSync(CHROMIUM);
// Under CI the tests must run: a missing browser fails them at launch rather than skipping them.
const skip = chromiumMissing && !process.env.CI;
if (skip) console.warn(`Skipping the dashboard's end-to-end tests: ${CHROMIUM} is absent (apt-get install -y chromium); under CI=true they run and fail.`);

const STAGES = ["download", "process", "upload"];
const gates = new StageGates();

const handlers: JobHandler<any, any>[] = [
  {
    // Waits for the test to let it start each stage, and to let it finish: the page is checked at
    // every step (STAGES.length + 1 gates).
    type: "staged",
    async run(_payload, context) {
      for (const [index, stage] of STAGES.entries()) {
        await gates.pass(context.job.id, index + 1, context.signal);
        await context.progress(stage, Math.round(((index + 1) * 100) / (STAGES.length + 1)));
      }
      await gates.pass(context.job.id, STAGES.length + 1, context.signal);
      return { stages: STAGES.length, verdict: "done" };
    },
  },
  {
    type: "broken",
    async run() {
      throw new PermanentJobError("the input file is corrupt", { category: "FILE_ERROR", details: { file: "input.csv" } });
    },
  },
  {
    // Runs until it is told to stop.
    type: "endless",
    async run(_payload, context) {
      await context.progress("waiting", 5);
      await new Promise((_resolve, reject) => context.signal.addEventListener("abort", () => reject(context.signal.reason), { once: true }));
    },
  },
  { type: "batch", async run() {} },
];

describe.skipIf(skip)("the operator dashboard in Chromium", { timeout: 240_000 }, () => {
  let conveyor: TestConveyor;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let buildDirectory: string;
  let alice: string;
  let olga: string;

  beforeAll(async () => {
    buildDirectory = mkdtempSync(join(tmpdir(), "conveyor-dashboard-"));
    await buildDashboard(buildDirectory);
    // One slot and no prefetch: a job waits QUEUED while another runs, so the page can show it queued.
    conveyor = await startTestConveyor({
      handlers,
      dashboardDirectory: buildDirectory,
      // Events over LISTEN/NOTIFY even when REDIS_URL is set: a test ends that connection.
      environment: { WORKER_ENABLED: "true", WORKER_CONCURRENCY: "1", WORKER_PREFETCH: "0", WORKER_SHUTDOWN_GRACE_MS: "1000", EVENTS_TRANSPORT: "postgres" },
    });
    [alice, olga] = await Promise.all([tokenFor(conveyor, "alice"), tokenFor(conveyor, "olga", "operator")]);
    mkdirSync(SCREENSHOTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    // A new context is a fresh profile: empty sessionStorage and localStorage, English first.
    context = await browser.newContext({ locale: "en-GB", viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(WAIT_MS);
    page = await context.newPage();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    gates.openAll();
    await conveyor?.dispose();
    if (buildDirectory) rmSync(buildDirectory, { recursive: true, force: true });
  }, 120_000);

  // What the page showed when a test failed, beside the other screenshots.
  beforeEach(({ task, onTestFailed }) => {
    onTestFailed(async () => {
      await page?.screenshot({ path: join(SCREENSHOTS, `failed-${task.name.replace(/\W+/g, "-").slice(0, 60)}.png`), fullPage: true }).catch(() => undefined);
    });
  });

  /**
   * Opens a page whose live updates come from jobUpdateBatches, and waits until the server has its
   * subscription: a change published before that would never reach it. The page before is left
   * first (about:blank closes its socket), so the one listener counted is this page's.
   */
  async function openLive(path: string, heading: string): Promise<void> {
    const listeners = () => conveyor.services.events.listenerCount("jobs:changed");
    await page.goto("about:blank");
    await eventually(() => listeners() === 0, WAIT_MS);
    await page.goto(`${conveyor.url}${path}`);
    await page.getByRole("heading", { name: heading, level: 1 }).waitFor();
    await eventually(() => listeners() === 1, WAIT_MS);
  }

  it("refuses a user token with a clear message, and signs an operator in with a pasted token", async () => {
    await page.goto(`${conveyor.url}/dashboard/`);
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await expectNoAccessibilityViolations(page, "sign-in");
    await page.getByLabel("Operator token").fill(alice);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    const refusal = page.getByRole("alert");
    await refusal.waitFor();
    expect(await refusal.textContent()).toContain("This is a user token: the dashboard is for operators only");
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);

    await page.getByLabel("Operator token").fill(olga);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
    expect(await page.getByText("Signed in as olga").count()).toBe(1);
    // The token is kept for the tab only, and never in the address.
    expect(await page.evaluate(() => sessionStorage.getItem("conveyor.session"))).toContain(olga);
    expect(page.url()).not.toContain(olga);
  });

  it("shows the overview: health, counts, charts, failures by category", async () => {
    await page.getByRole("heading", { name: /Queue health/ }).waitFor();
    await page.getByRole("heading", { name: "Throughput and success rate" }).waitFor();
    expect(await page.locator(".chart canvas").count()).toBe(6);
    await expectNoAccessibilityViolations(page, "overview");
  });

  it("lists a new job as it arrives and follows it from queued through its stages to completed without reloading", async () => {
    const blocker = await enqueue(conveyor, olga, { type: "staged" });
    await eventually(async () => (await statusOf(conveyor, blocker)) === "PROCESSING", WAIT_MS);

    await openLive(`/dashboard/jobs`, "Jobs");
    await page.locator(`tr[data-job-id="${blocker}"]`).waitFor();
    // Marks this document: a reload would lose the mark.
    await page.evaluate(() => ((window as unknown as { conveyorTestMark: boolean }).conveyorTestMark = true));

    const job = await enqueue(conveyor, alice, { type: "staged", payload: { report: "weekly" } });
    const row = page.locator(`tr[data-job-id="${job}"]`);
    await row.waitFor();
    expect(await row.getAttribute("data-status")).toBe("QUEUED");
    // The running blocker's progress bar follows its stages in the list.
    const blockerRow = page.locator(`tr[data-job-id="${blocker}"]`);
    await blockerRow.getByRole("progressbar").waitFor();
    gates.open(blocker);
    await blockerRow.getByText(STAGES[0]!).waitFor();

    await row.getByRole("link").click();
    const live = page.getByTestId("job-live-status");
    await page.locator('[data-testid="job-live-status"][data-status="QUEUED"]').waitFor();

    for (let gate = 2; gate <= STAGES.length + 1; gate++) gates.open(blocker);
    await page.locator('[data-testid="job-live-status"][data-status="PROCESSING"]').waitFor();
    for (const [index, stage] of STAGES.entries()) {
      gates.open(job);
      await live.getByText(stage).waitFor();
      await live.getByRole("progressbar").waitFor();
      if (index === 1) await page.screenshot({ path: join(SCREENSHOTS, "job-running.png"), fullPage: true });
    }
    gates.open(job);
    await page.locator('[data-testid="job-live-status"][data-status="COMPLETED"]').waitFor();
    const timeline = page.getByTestId("timeline");
    await timeline.getByText("Processing → Completed").waitFor();
    for (const stage of STAGES) expect(await timeline.textContent()).toContain(stage);
    await page.getByRole("button", { name: "Download result (JSON)" }).waitFor();
    expect(await page.evaluate(() => (window as unknown as { conveyorTestMark?: boolean }).conveyorTestMark)).toBe(true);

    await page.screenshot({ path: join(SCREENSHOTS, "job.png"), fullPage: true });
    await expectNoAccessibilityViolations(page, "job page");
  });

  it("follows on when its live updates were interrupted: the jobs page subscribes again and shows what changed meanwhile", async () => {
    await openLive(`/dashboard/jobs`, "Jobs");
    const listeners = () => conveyor.services.events.listenerCount("jobs:changed");
    // The page's topic is registered under the LISTEN connection (a row of event_listeners) a
    // moment after it is listened to here; until then there is no connection to name.
    await conveyor.services.events.whenListening("jobs:changed");
    const admin = new pg.Client({ connectionString: conveyor.databaseUrl });
    await admin.connect();
    try {
      // The LISTEN connection is lost: once it is back, the page's stream ends with EVENTS_INTERRUPTED.
      const { rows } = await admin.query("SELECT pg_terminate_backend(listener_pid) AS terminated FROM (SELECT DISTINCT listener_pid FROM event_listeners WHERE topic = 'jobs:changed') AS listening");
      expect(rows).toEqual([{ terminated: true }]);
      await eventually(() => listeners() === 0, WAIT_MS);
    } finally {
      await admin.end();
    }
    // Olga's: later tests count alice's parked jobs.
    const job = await enqueue(conveyor, olga, { type: "batch", runAt: PARKED });
    await page.locator(`tr[data-job-id="${job}"]`).waitFor();
    await eventually(() => listeners() === 1, WAIT_MS);
  });

  it("shows a failed job's category and localized message, and retries it", async () => {
    const job = await enqueue(conveyor, alice, { type: "broken" });
    await eventually(async () => (await statusOf(conveyor, job)) === "FAILED", WAIT_MS);
    await page.goto(`${conveyor.url}/dashboard/jobs/${job}`);
    await page.getByLabel("Language").selectOption("fr");
    await page.getByRole("heading", { name: "Erreur" }).waitFor();
    expect(await page.getByTestId("error-category").textContent()).toBe("FILE_ERROR");
    await page.getByTestId("error-message").getByText(userMessage("FILE_ERROR", "fr")).waitFor();
    await expectNoAccessibilityViolations(page, "failed job page (fr)");

    await page.getByRole("button", { name: "Relancer" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Confirmer" }).click();
    await page.getByRole("status").getByText("La tâche est de nouveau en file.").waitFor();
    // It fails again (the file is still corrupt): the page follows the new attempt live.
    await page.getByTestId("timeline").getByText("retried by hand").waitFor();
    await page.locator('[data-testid="job-live-status"][data-status="FAILED"]').waitFor();
    const retried = await conveyor.database.pool.query(`SELECT count(*)::int AS n FROM job_events WHERE job_id = $1 AND message = 'retried by hand'`, [job]);
    expect(retried.rows[0].n).toBe(1);
    await page.getByLabel("Langue").selectOption("en");
  });

  it("cancels a running job", async () => {
    const job = await enqueue(conveyor, alice, { type: "endless" });
    await eventually(async () => (await statusOf(conveyor, job)) === "PROCESSING", WAIT_MS);
    await page.goto(`${conveyor.url}/dashboard/jobs/${job}`);
    await page.locator('[data-testid="job-live-status"][data-status="PROCESSING"]').waitFor();
    await page.getByRole("button", { name: "Cancel", exact: true }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Confirm" }).click();
    await page.getByRole("status").getByText("it has been asked to stop").waitFor();
    await page.locator('[data-testid="job-live-status"][data-status="CANCELLED"]').waitFor();
    expect(await statusOf(conveyor, job)).toBe("CANCELLED");
  });

  it("bulk-cancels the jobs matching the filter, and only those", async () => {
    const bob = await tokenFor(conveyor, "bob");
    const matching = await Promise.all([1, 2, 3].map(() => enqueue(conveyor, alice, { type: "batch", runAt: PARKED })));
    const othersType = await enqueue(conveyor, alice, { type: "staged", runAt: PARKED });
    const othersOwner = await enqueue(conveyor, bob, { type: "batch", runAt: PARKED });
    await page.goto(`${conveyor.url}/dashboard/jobs`);
    await page.getByLabel("Type").fill("batch");
    await page.getByLabel("Owner").fill("alice");
    await page.getByRole("button", { name: "Apply" }).click();
    // The unfiltered list shown before Apply holds all five: wait for the filtered one, which drops
    // the other type's and the other owner's (counted at once, this raced the filtered list).
    for (const id of [othersType, othersOwner]) await page.locator(`tr[data-job-id="${id}"]`).waitFor({ state: "detached" });
    for (const id of matching) await page.locator(`tr[data-job-id="${id}"]`).waitFor();
    expect(await page.locator(`tr[data-job-id="${othersType}"], tr[data-job-id="${othersOwner}"]`).count()).toBe(0);
    await expectNoAccessibilityViolations(page, "jobs list");
    await page.screenshot({ path: join(SCREENSHOTS, "jobs.png"), fullPage: true });

    await page.getByRole("button", { name: "Cancel matching jobs" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Confirm" }).click();
    await page.getByRole("status").getByText("3 job(s) cancelled, 0 running job(s) asked to stop.").waitFor();
    for (const id of matching) await page.locator(`tr[data-job-id="${id}"][data-status="CANCELLED"]`).waitFor();
    for (const id of matching) expect(await statusOf(conveyor, id)).toBe("CANCELLED");
    expect(await statusOf(conveyor, othersType)).toBe("QUEUED");
    expect(await statusOf(conveyor, othersOwner)).toBe("QUEUED");
  });

  it("updates the overview live, and fits a phone's width", async () => {
    await openLive(`/dashboard/`, "Overview");
    // The broken job's two failures, by category.
    await page.getByRole("cell", { name: "FILE_ERROR" }).waitFor();
    const completed = page.getByTestId("count-COMPLETED");
    const before = Number(await completed.textContent());
    await enqueue(conveyor, alice, { type: "batch" });
    await page.waitForFunction((expected) => Number(document.querySelector('[data-testid="count-COMPLETED"]')?.textContent) === expected, before + 1, { timeout: WAIT_MS });
    await page.screenshot({ path: join(SCREENSHOTS, "overview.png"), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole("heading", { name: "Throughput and success rate" }).waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    await page.screenshot({ path: join(SCREENSHOTS, "overview-phone.png"), fullPage: true });
    await expectNoAccessibilityViolations(page, "overview (phone)");
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it("signs in with a development operator token, outside production", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("button", { name: "Use a development operator token" }).click();
    await page.getByText("Signed in as dev-operator").waitFor();
  });

  it("is usable from the keyboard alone", async () => {
    await page.goto(`${conveyor.url}/dashboard/`);
    await page.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
    // The skip link comes first, then the navigation: Tab reaches "Jobs" and Enter follows it.
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Skip to content");
    for (let presses = 0; presses < 5; presses++) {
      await page.keyboard.press("Tab");
      if ((await page.evaluate(() => document.activeElement?.textContent)) === "Jobs") break;
    }
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Jobs", level: 1 }).waitFor();
  });
});

/** Runs axe-core in the page (WCAG 2.1 A and AA, and best practices) and fails on any violation. */
async function expectNoAccessibilityViolations(page: Page, where: string): Promise<void> {
  // Evaluated through the DevTools protocol, so the page's Content-Security-Policy stays on.
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(context: Document, options: unknown): Promise<{ violations: { id: string; help: string; nodes: { target: unknown }[] }[] }> } }).axe;
    const results = await axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } });
    return results.violations.map((violation) => ({ id: violation.id, help: violation.help, targets: violation.nodes.map((node) => JSON.stringify(node.target)) }));
  });
  expect(violations, `accessibility violations on the ${where}: ${JSON.stringify(violations, null, 1)}`).toEqual([]);
}
