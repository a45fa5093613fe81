// What a round trip costs this machine when it comes after a pause, as the idle-latency
// test sends them (one job every 20 ms), against the same round trips back to back: SELECT 1, a
// one-row INSERT committed on its own (any durable enqueue's floor), and the engine's enqueue of
// one job (sql.ENQUEUE_MANY, through enqueueJobs), whole and, once more, split into an explicit
// BEGIN, its statement and its COMMIT (the pause before the BEGIN). One connection of its own on a
// fresh, never-analyzed database; ROUNDS (150) of each, interleaved, after GAP_MS (20) of quiet and
// then with none; p50 and p90 in ms.
//   npx tsx bench/idle-round-trips.ts
import pg from "pg";
import { applyMigrations } from "../src/db/migrate.js";
import { enqueueJobs } from "../src/jobs/queue.js";
import { createLogger } from "../src/logger.js";
import { createBenchDatabase } from "./support/database.js";
import { percentile } from "./support/proc.js";

const rounds = Number(process.env.ROUNDS ?? 150);
const gapMs = Number(process.env.GAP_MS ?? 20);

const database = await createBenchDatabase();
const client = new pg.Client({ connectionString: database.url });
try {
  await client.connect();
  await applyMigrations(client, createLogger("warn", {}, process.stderr));
  await client.query("CREATE TABLE idle_floor (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())");
  const enqueueOne = (round: number) => enqueueJobs(client, [{ type: "bench", owner: "bench", payload: { round } }], { actor: "bench" });
  // The same enqueue in a transaction of its own: BEGIN, the statement and COMMIT timed apart.
  const enqueueOneSplit = async (round: number): Promise<[number, number, number]> => {
    let started = performance.now();
    await client.query("BEGIN");
    const begin = performance.now() - started;
    started = performance.now();
    await enqueueOne(round);
    const statement = performance.now() - started;
    started = performance.now();
    await client.query("COMMIT");
    return [begin, statement, performance.now() - started];
  };
  for (let round = 0; round < 20; round++) await enqueueOne(round); // parsed and planned once, as a running instance has them

  console.log(`Round trips on one connection, ${rounds} of each, Node ${process.version} (p50 / p90, ms)`);
  for (const pause of [gapMs, 0]) {
    const times: Record<string, number[]> = { "SELECT 1": [], "one-row INSERT": [], "enqueue of one job": [], "  BEGIN": [], "  its statement": [], "  its COMMIT": [] };
    const timed = async (name: string, run: () => Promise<unknown>) => {
      if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
      const started = performance.now();
      await run();
      times[name]!.push(performance.now() - started);
    };
    for (let round = 0; round < rounds; round++) {
      await timed("SELECT 1", () => client.query({ name: "idle-select", text: "SELECT 1" }));
      await timed("one-row INSERT", () => client.query({ name: "idle-insert", text: "INSERT INTO idle_floor DEFAULT VALUES" }));
      await timed("enqueue of one job", () => enqueueOne(round));
      if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
      const [begin, statement, commit] = await enqueueOneSplit(round);
      times["  BEGIN"]!.push(begin);
      times["  its statement"]!.push(statement);
      times["  its COMMIT"]!.push(commit);
    }
    console.log(pause > 0 ? `after ${pause} ms of quiet each:` : "back to back:");
    for (const [name, values] of Object.entries(times)) console.log(`  ${name.padEnd(20)} ${quantile(values, 0.5)} / ${quantile(values, 0.9)}`);
  }
} finally {
  await client.end().catch(() => {});
  await database.drop();
}

function quantile(values: number[], fraction: number): string {
  return percentile([...values].sort((a, b) => a - b), fraction * 100).toFixed(2);
}
