-- Writes on the hot path, made cheaper; what schema.prisma cannot express stays here (README,
-- "Migrations").

-- A job's events are written in the same statement as each of its transitions, so a foreign key
-- adds a lookup and a row lock on the job per event: half the cost of an enqueue. Retention deletes
-- a job and its events in one statement (src/jobs/sql.ts), and nothing else deletes jobs.
ALTER TABLE "job_events" DROP CONSTRAINT "job_events_job_id_fkey";

-- The unique keys only ever hold for rows that have them: most jobs carry neither an idempotency
-- key nor an assessment, and need not be entered in either index.
DROP INDEX "processing_jobs_owner_idempotency_key_key";
CREATE UNIQUE INDEX "processing_jobs_owner_idempotency_key_key" ON "processing_jobs"("owner", "idempotency_key")
    WHERE "idempotency_key" IS NOT NULL;

DROP INDEX "processing_jobs_assessment_id_correlation_id_schema_version_key";
CREATE UNIQUE INDEX "processing_jobs_assessment_id_correlation_id_schema_version_key"
    ON "processing_jobs"("assessment_id", "correlation_id", "schema_version")
    WHERE "assessment_id" IS NOT NULL;
