import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { startEmbeddedPostgres } from "../../src/db/embedded-postgres.js";
import { createLogger } from "../../src/logger.js";

const logger = createLogger("silent");

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

describe("embedded PostgreSQL", () => {
  const root = mkdtempSync(path.join(tmpdir(), "conveyor-embedded-"));
  chmodSync(root, 0o755);
  const directory = path.join(root, "postgres");
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("keeps its data across restarts and refuses a second process on the same folder", async () => {
    const port = await freePort();
    const first = await startEmbeddedPostgres({ directory, port, database: "conveyor", logger });
    const client = new pg.Client({ connectionString: first.url });
    await client.connect();
    await client.query("CREATE TABLE kept (value text); INSERT INTO kept VALUES ('still here')");
    await client.end();

    await expect(startEmbeddedPostgres({ directory, port: await freePort(), database: "conveyor", logger })).rejects.toThrow(/in use by process/);
    await first.stop();

    // A lock left by a process that no longer exists is taken over.
    writeFileSync(`${directory}.lock`, "999999999");
    const second = await startEmbeddedPostgres({ directory, port, database: "conveyor", logger });
    const again = new pg.Client({ connectionString: second.url });
    await again.connect();
    const { rows } = await again.query("SELECT value FROM kept");
    await again.end();
    await second.stop();
    expect(rows).toEqual([{ value: "still here" }]);
  });
});
