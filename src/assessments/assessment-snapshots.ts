import type pg from "pg";
import { UUID } from "../events/messages.js";
import type { AssessmentSnapshot } from "../handlers/assessment-handler.js";
import { StatementBatcher } from "../jobs/statement-batcher.js";

const SELECT_SNAPSHOTS = `SELECT id, owner, kind, answers FROM assessments WHERE id = ANY($1::uuid[])`;

/**
 * What an assessment job reads before scoring, by id. Every assessment job reads one, and through
 * Prisma's client that read was the largest cost in the server's profile of 10,000 watched
 * assessment jobs (8 % of its CPU, more than graphql execution): here the reads that arrive
 * together share one prepared statement and one round trip, as JobService.findRecord's do.
 */
export function assessmentSnapshotReader(pool: pg.Pool): (id: string) => Promise<AssessmentSnapshot | null> {
  const reads = new StatementBatcher<string, AssessmentSnapshot | null>(
    async (ids) => {
      const { rows } = await pool.query<AssessmentSnapshot>({ name: "conveyor-select-assessment-snapshots", text: SELECT_SNAPSHOTS, values: [ids] });
      const found = new Map(rows.map((row) => [row.id, row]));
      return ids.map((id) => found.get(id) ?? null);
    },
    { oneAtATime: false },
  );
  // A malformed id (a payload names it) would fail the whole statement, and with it every read sharing it.
  return (id) => (UUID.test(id) ? reads.add(id.toLowerCase()) : Promise.resolve(null));
}
