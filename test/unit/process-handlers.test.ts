import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

describe("process handlers", () => {
  it("item 20: an unhandled rejection is logged with its error and the process keeps running", () => {
    const folder = mkdtempSync(join(tmpdir(), "conveyor-handlers-"));
    try {
      const script = join(folder, "main.ts");
      const source = (path: string) => JSON.stringify(resolve(path));
      writeFileSync(
        script,
        `import { installProcessHandlers } from ${source("src/server/process-handlers.ts")};
import { createLogger } from ${source("src/logger.ts")};
installProcessHandlers(createLogger("info"));
void Promise.reject(Object.assign(new Error("Connection is closed."), { code: "ECONNRESET" }));
setTimeout(() => { console.log(JSON.stringify({ msg: "still running" })); process.exit(0); }, 200);
`,
      );
      const run = spawnSync(process.execPath, ["--import", "tsx", script], { encoding: "utf8", timeout: 20_000 });
      expect(run.status, run.stderr).toBe(0);
      const lines = run.stdout.trim().split("\n").map((line) => JSON.parse(line) as Record<string, any>);
      expect(lines[0]).toMatchObject({ level: 50, msg: "unhandled promise rejection; the process keeps running", err: { type: "Error", message: "Connection is closed.", code: "ECONNRESET" }, unhandledRejections: 1 });
      expect(lines.at(-1)).toMatchObject({ msg: "still running" });
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
