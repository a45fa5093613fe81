import type pg from "pg";
import type { AssessmentSnapshot } from "../handlers/assessment-handler.js";
import { batchedReadsById } from "../jobs/statement-batcher.js";

const SELECT_SNAPSHOTS = `SELECT id, owner, kind, answers FROM assessments WHERE id = ANY($1::uuid[])`;

/**
 * What an assessment job reads before scoring, by id. Every assessment job reads one, and through
 * Prisma's client that read was the largest cost in the server's profile of 10,000 watched
 * assessment jobs (8 % of its CPU, more than graphql execution): here the reads that arrive
 * together share one prepared statement and one round trip, as JobService.findRecord's do.
 */
export function assessmentSnapshotReader(pool: pg.Pool): (id: string) => Promise<AssessmentSnapshot | null> {
  const read = batchedReadsById(async (ids) => {
    const { rows } = await pool.query<AssessmentSnapshot>({ name: "conveyor-select-assessment-snapshots", text: SELECT_SNAPSHOTS, values: [ids] });
    return new Map(rows.map((row) => [row.id, row]));
  });
  return (id) => {
    // A malformed id (a payload names it) would fail the whole statement, and with it every read sharing it.
    const canonical = canonicalUuid(id);
    return canonical ? read(canonical) : Promise.resolve(null);
  };
}

/** The forms of a UUID PostgreSQL reads (any case, braces, hyphens or none) written as it prints them; null for anything else. */
function canonicalUuid(id: string): string | null {
  const groups = /^\{?([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})\}?$/i.exec(id);
  return groups ? groups.slice(1).join("-").toLowerCase() : null;
}
