import { createRequire } from "node:module";
import type pg from "pg";

export interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  "Actual Rows"?: number;
  "Actual Loops"?: number;
  "Rows Removed by Filter"?: number;
  Plans?: PlanNode[];
}

export interface PreparedPlan {
  plan: PlanNode;
  executionMs: number;
  /** What the seventh execution spent planning: about nothing once a generic plan is kept. */
  planningMs: number;
  /** Whether PostgreSQL kept a generic plan rather than planning each execution for its values. */
  generic: boolean;
}

export const planNodes = (plan: PlanNode): PlanNode[] => [plan, ...(plan.Plans ?? []).flatMap(planNodes)];

// pg's own serialization of parameter values (arrays, dates, JSON), which it does not export otherwise.
const pgUtils = createRequire(import.meta.url)("pg/lib/utils.js") as { prepareValue(value: unknown): unknown };

/**
 * The plan the engine runs `text` with. Its statements are prepared, and PostgreSQL plans a
 * prepared statement's first five executions for their values, then keeps a generic plan unless
 * those came out cheaper (the worker's connections always keep it: WORKER_PLANNER_SETTINGS), made
 * at its first use. So `text` is prepared on `client` and EXPLAIN ANALYZEd seven times, each on the
 * same rows (a savepoint undoes what it did), and the seventh is returned. Call it inside a
 * transaction the caller rolls back. `values`: a function when each execution needs its own.
 */
export async function explainPrepared(client: pg.PoolClient, text: string, values: unknown[] | (() => unknown[]), options: { buffers?: boolean } = {}): Promise<PreparedPlan> {
  // EXECUTE takes no bind parameters: the values go in as literals, written as pg would send them.
  const literal = (value: unknown) => {
    const prepared = pgUtils.prepareValue(value);
    return prepared === null ? "NULL" : client.escapeLiteral(String(prepared));
  };
  const explain = () => {
    const list = (typeof values === "function" ? values() : values).map(literal).join(", ");
    return `EXPLAIN (ANALYZE, ${options.buffers ? "BUFFERS, " : ""}FORMAT JSON) EXECUTE explained(${list})`;
  };
  await client.query(`PREPARE explained AS ${text}`);
  try {
    let report!: { Plan: PlanNode; "Execution Time": number; "Planning Time": number };
    for (let execution = 0; execution < 7; execution++) {
      await client.query("SAVEPOINT execution");
      const { rows } = await client.query(explain());
      report = (rows[0]!["QUERY PLAN"] as (typeof report)[])[0]!;
      await client.query("ROLLBACK TO SAVEPOINT execution");
    }
    const { rows } = await client.query<{ generic_plans: string }>("SELECT generic_plans FROM pg_prepared_statements WHERE name = 'explained'");
    return { plan: report.Plan, executionMs: report["Execution Time"], planningMs: report["Planning Time"], generic: Number(rows[0]!.generic_plans) > 0 };
  } finally {
    await client.query("DEALLOCATE explained");
  }
}
