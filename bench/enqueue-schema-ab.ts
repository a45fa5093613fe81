// 1,000-job batches through the engine's enqueue (enqueueJobs), alternating between two fresh,
// never-analyzed databases: A as the migrations leave it, B altered by VARIANT_SQL after them (an
// index dropped or changed, a column's collation…). ROUNDS (30) batches each, the order swapped
// every round; prints the median time per batch of each and B/A. For trying a schema change on
// the enqueue's cost before writing a migration.
//   VARIANT_SQL='DROP INDEX audit_events_at_idx' npx tsx bench/enqueue-schema-ab.ts
import pg from "pg";
import { applyMigrations } from "../src/db/migrate.js";
import { enqueueJobs, type EnqueueInput } from "../src/jobs/queue.js";
import { createLogger } from "../src/logger.js";
import { createBenchDatabase } from "./support/database.js";

const rounds = Number(process.env.ROUNDS ?? 30);
const variantSql = process.env.VARIANT_SQL ?? "";
const logger = createLogger("warn", {}, process.stderr);

async function openDatabase(alteration: string) {
  const database = await createBenchDatabase();
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    await applyMigrations(client, logger);
    if (alteration) await client.query(alteration);
  } finally {
    await client.end();
  }
  return { database, pool: new pg.Pool({ connectionString: database.url, max: 1 }) };
}

const sides = { A: await openDatabase(""), B: await openDatabase(variantSql) };
try {
  const times: Record<keyof typeof sides, number[]> = { A: [], B: [] };
  for (let round = 0; round < rounds; round++) {
    for (const name of round % 2 ? (["A", "B"] as const) : (["B", "A"] as const)) {
      const inputs: EnqueueInput[] = Array.from({ length: 1000 }, (_, index) => ({ type: "bench", owner: "bench", payload: { index, round } }));
      const started = performance.now();
      await enqueueJobs(sides[name].pool, inputs, { actor: "bench" });
      times[name].push(performance.now() - started);
    }
  }
  const medianA = median(times.A);
  const medianB = median(times.B);
  console.log(`1,000-job enqueues, ${rounds} each, Node ${process.version}; B: ${variantSql || "(unaltered)"}`);
  console.log(`A ${medianA.toFixed(2)} ms, B ${medianB.toFixed(2)} ms per batch (B/A ${(medianB / medianA).toFixed(3)})`);
} finally {
  for (const side of Object.values(sides)) {
    await side.pool.end();
    await side.database.drop();
  }
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}
