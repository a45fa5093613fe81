-- Validation runs: an uploaded CSV file (in chunks), and the run that checks it against a rule set.

CREATE TABLE "validation_files" (
    "id" UUID NOT NULL,
    "owner" TEXT NOT NULL,
    "byte_size" BIGINT NOT NULL DEFAULT 0,
    "chunk_count" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "validation_files_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "validation_files_created_at_idx" ON "validation_files"("created_at");

CREATE TABLE "validation_file_chunks" (
    "file_id" UUID NOT NULL,
    "seq" INTEGER NOT NULL,
    "data" BYTEA NOT NULL,

    CONSTRAINT "validation_file_chunks_pkey" PRIMARY KEY ("file_id","seq")
);
-- Out of line and uncompressed: the handler reads every chunk once, and pglz decompression of
-- 256 kB per chunk cost more than the disk it saves for files limited to tens of megabytes.
ALTER TABLE "validation_file_chunks" ALTER COLUMN "data" SET STORAGE EXTERNAL;

CREATE TABLE "validation_runs" (
    "id" UUID NOT NULL,
    "owner" TEXT NOT NULL,
    "rule_set" TEXT NOT NULL,
    "correlation_id" TEXT,
    "file_id" UUID NOT NULL,
    "file_bytes" BIGINT NOT NULL,
    "job_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "validation_runs_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "validation_runs_job_id_key" ON "validation_runs"("job_id");
CREATE INDEX "validation_runs_owner_created_at_idx" ON "validation_runs"("owner", "created_at" DESC);
CREATE INDEX "validation_runs_file_id_idx" ON "validation_runs"("file_id");
-- Exactly one run per (owner, correlation id); runs without a correlation id are each their own.
CREATE UNIQUE INDEX "validation_runs_owner_correlation_id_key" ON "validation_runs"("owner", "correlation_id")
    WHERE "correlation_id" IS NOT NULL;

ALTER TABLE "validation_file_chunks" ADD CONSTRAINT "validation_file_chunks_file_id_fkey"
    FOREIGN KEY ("file_id") REFERENCES "validation_files"("id") ON DELETE CASCADE ON UPDATE CASCADE;
-- Retention deletes a finished job's file (src/jobs/sql.ts); the run goes with either.
ALTER TABLE "validation_runs" ADD CONSTRAINT "validation_runs_file_id_fkey"
    FOREIGN KEY ("file_id") REFERENCES "validation_files"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "validation_runs" ADD CONSTRAINT "validation_runs_job_id_fkey"
    FOREIGN KEY ("job_id") REFERENCES "processing_jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;
