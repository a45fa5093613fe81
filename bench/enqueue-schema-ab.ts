// 1,000-job batches through the engine's enqueue (enqueueJobs), alternating between two fresh,
// never-analyzed databases: A as the migrations leave it, B altered by VARIANT_SQL after them (an
// index dropped or changed, a column's collation…). After WARM_UP_ROUNDS (5) untimed batches each
// (the enqueue's first executions are planned for their parameters), ROUNDS (30) timed ones each,
// the order swapped every round; prints the median time per batch of each and B/A. For trying a
// schema change on the enqueue's cost before writing a migration.
//   VARIANT_SQL='DROP INDEX audit_events_at_idx' npx tsx bench/enqueue-schema-ab.ts
import pg from "pg";
import { applyMigrations } from "../src/db/migrate.js";
import { enqueueJobs, type EnqueueInput } from "../src/jobs/queue.js";
import { createLogger } from "../src/logger.js";
import { createBenchDatabase } from "./support/database.js";
import { median } from "./support/proc.js";

const rounds = Number(process.env.ROUNDS ?? 30);
const warmUpRounds = Number(process.env.WARM_UP_ROUNDS ?? 5);
const variantSql = process.env.VARIANT_SQL ?? "";
const logger = createLogger("warn", {}, process.stderr);

interface Side {
  pool: pg.Pool;
  drop(): Promise<void>;
}

/** A migrated database altered by `alteration`, dropped again if that fails. */
async function openDatabase(alteration: string): Promise<Side> {
  const database = await createBenchDatabase();
  try {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      await applyMigrations(client, logger);
      if (alteration) await client.query(alteration);
    } finally {
      await client.end();
    }
  } catch (error) {
    await database.drop();
    throw error;
  }
  const pool = new pg.Pool({ connectionString: database.url, max: 1 });
  return {
    pool,
    async drop() {
      await pool.end();
      await database.drop();
    },
  };
}

const sides: Partial<Record<"A" | "B", Side>> = {};
try {
  sides.A = await openDatabase("");
  sides.B = await openDatabase(variantSql);
  const times: Record<"A" | "B", number[]> = { A: [], B: [] };
  for (let round = 0; round < warmUpRounds + rounds; round++) {
    for (const name of round % 2 ? (["A", "B"] as const) : (["B", "A"] as const)) {
      const inputs: EnqueueInput[] = Array.from({ length: 1000 }, (_, index) => ({ type: "bench", owner: "bench", payload: { index, round } }));
      const started = performance.now();
      await enqueueJobs(sides[name]!.pool, inputs, { actor: "bench" });
      if (round >= warmUpRounds) times[name].push(performance.now() - started);
    }
  }
  const medianA = median(times.A);
  const medianB = median(times.B);
  console.log(`1,000-job enqueues, ${rounds} each after ${warmUpRounds} untimed, Node ${process.version}; B: ${variantSql || "(unaltered)"}`);
  console.log(`A ${medianA.toFixed(2)} ms, B ${medianB.toFixed(2)} ms per batch (B/A ${(medianB / medianA).toFixed(3)})`);
} finally {
  await Promise.allSettled(Object.values(sides).map((side) => side.drop()));
}
