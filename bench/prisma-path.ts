// The engine's hot statements through the Prisma client ($queryRawUnsafe over @prisma/adapter-pg)
// against the same statements on a pg pool (named, prepared once per connection, as the engine
// sends them): claim one job, complete it, CONCURRENCY loops at once, on a fresh, never-analyzed
// table of JOBS waiting jobs. Prints jobs/s for each path and the ratio, per concurrency.
//   npx tsx bench/prisma-path.ts            (JOBS=5000 CONCURRENCY=1,10 ROUNDS=3)
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { WORKER_PLANNER_SETTINGS } from "../src/db/database.js";
import { applyMigrations } from "../src/db/migrate.js";
import { PrismaClient } from "../src/generated/prisma/client.js";
import { enqueueJobs } from "../src/jobs/queue.js";
import * as sql from "../src/jobs/sql.js";
import { createLogger } from "../src/logger.js";
import { createBenchDatabase } from "./support/database.js";

const jobs = Number(process.env.JOBS ?? 5000);
const concurrencies = (process.env.CONCURRENCY ?? "1,10").split(",").map(Number);
const rounds = Number(process.env.ROUNDS ?? 3);

type Run = (text: string, values: unknown[], name: string) => Promise<Record<string, unknown>[]>;

const results: string[] = [];
for (const concurrency of concurrencies) {
  for (let round = 0; round < rounds; round++) {
    for (const path of ["pg", "prisma"] as const) {
      const database = await createBenchDatabase();
      const setup = new pg.Pool({ connectionString: database.url, max: 2 });
      const connections = new pg.Pool({ connectionString: database.url, max: concurrency + 1, options: WORKER_PLANNER_SETTINGS });
      // Dropping the database ends connections still open: not an error of the measurement.
      for (const pool of [setup, connections]) pool.on("error", () => undefined);
      const prisma = new PrismaClient({ adapter: new PrismaPg(connections) });
      try {
        const client = await setup.connect();
        await applyMigrations(client, createLogger("warn"));
        client.release();
        for (let done = 0; done < jobs; done += 1000) {
          await enqueueJobs(setup, Array.from({ length: Math.min(1000, jobs - done) }, () => ({ type: "noop", owner: "bench" })), { actor: "bench" });
        }
        const run: Run =
          path === "pg"
            ? async (text, values, name) => (await connections.query({ name, text, values })).rows
            : (text, values) => prisma.$queryRawUnsafe<Record<string, unknown>[]>(text, ...values);
        const started = performance.now();
        let processed = 0;
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            for (;;) {
              const [job] = await run(sql.CLAIM, [null, "bench", ["noop"], 1, []], "claim");
              if (!job) return;
              await run(sql.COMPLETE_MANY, [null, [job.id], [job.lock_token], ["null"]], "complete");
              processed++;
            }
          }),
        );
        const perSecond = Math.round(processed / ((performance.now() - started) / 1000));
        results.push(`c=${concurrency} round ${round + 1} ${path.padEnd(6)} ${perSecond} jobs/s`);
        console.log(results.at(-1));
      } finally {
        await prisma.$disconnect();
        await connections.end();
        await setup.end();
        await database.drop();
      }
    }
  }
}
