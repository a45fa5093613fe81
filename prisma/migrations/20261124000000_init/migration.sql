-- CreateEnum
CREATE TYPE "AssessmentStatus" AS ENUM ('IN_PROGRESS', 'COMPLETED');

-- CreateEnum
CREATE TYPE "JobStatus" AS ENUM ('QUEUED', 'PROCESSING', 'RETRYING', 'COMPLETED', 'FAILED', 'VALIDATION_FAILED', 'CANCELLED');

-- CreateEnum
CREATE TYPE "JobPriority" AS ENUM ('LOW', 'NORMAL', 'HIGH');

-- CreateTable
CREATE TABLE "assessments" (
    "id" UUID NOT NULL,
    "owner" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "answers" JSONB NOT NULL DEFAULT '{}',
    "status" "AssessmentStatus" NOT NULL DEFAULT 'IN_PROGRESS',
    "completed_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "assessments_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "processing_jobs" (
    "id" UUID NOT NULL,
    "type" TEXT NOT NULL,
    "owner" TEXT NOT NULL,
    "assessment_id" UUID,
    "correlation_id" TEXT NOT NULL,
    "schema_version" TEXT NOT NULL DEFAULT 'v1',
    "idempotency_key" TEXT,
    "status" "JobStatus" NOT NULL DEFAULT 'QUEUED',
    "stage" TEXT,
    "progress" INTEGER NOT NULL DEFAULT 0,
    "bytes_done" BIGINT,
    "bytes_total" BIGINT,
    "priority" "JobPriority" NOT NULL DEFAULT 'NORMAL',
    "priority_rank" SMALLINT NOT NULL DEFAULT 1,
    "retry_count" INTEGER NOT NULL DEFAULT 0,
    "max_attempts" INTEGER NOT NULL DEFAULT 3,
    "run_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_retry_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "started_at" TIMESTAMPTZ(3),
    "completed_at" TIMESTAMPTZ(3),
    "processing_time_ms" INTEGER,
    "heartbeat_at" TIMESTAMPTZ(3),
    "locked_by" TEXT,
    "timeout_ms" INTEGER,
    "payload" JSONB NOT NULL DEFAULT '{}',
    "result" JSONB,
    "metadata" JSONB NOT NULL DEFAULT '{}',
    "error_code" TEXT,
    "error_message" TEXT,
    "error_details" JSONB,
    "error_recoverable" BOOLEAN,
    "cancel_requested_at" TIMESTAMPTZ(3),

    CONSTRAINT "processing_jobs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "job_events" (
    "id" BIGSERIAL NOT NULL,
    "job_id" UUID NOT NULL,
    "from_status" "JobStatus",
    "to_status" "JobStatus" NOT NULL,
    "attempt" INTEGER NOT NULL,
    "stage" TEXT,
    "progress" INTEGER,
    "message" TEXT,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "job_events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "audit_events" (
    "id" BIGSERIAL NOT NULL,
    "actor" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "entity_type" TEXT NOT NULL,
    "entity_id" TEXT NOT NULL,
    "correlation_id" TEXT,
    "metadata" JSONB NOT NULL DEFAULT '{}',
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "audit_events_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "assessments_owner_created_at_idx" ON "assessments"("owner", "created_at" DESC);

-- CreateIndex
CREATE UNIQUE INDEX "processing_jobs_idempotency_key_key" ON "processing_jobs"("idempotency_key");

-- CreateIndex
CREATE INDEX "processing_jobs_owner_created_at_idx" ON "processing_jobs"("owner", "created_at" DESC);

-- CreateIndex
CREATE INDEX "processing_jobs_status_created_at_idx" ON "processing_jobs"("status", "created_at" DESC);

-- CreateIndex
CREATE UNIQUE INDEX "processing_jobs_assessment_id_correlation_id_schema_version_key" ON "processing_jobs"("assessment_id", "correlation_id", "schema_version");

-- CreateIndex
CREATE INDEX "job_events_job_id_id_idx" ON "job_events"("job_id", "id");

-- CreateIndex
CREATE INDEX "audit_events_entity_type_entity_id_idx" ON "audit_events"("entity_type", "entity_id");

-- CreateIndex
CREATE INDEX "audit_events_at_idx" ON "audit_events"("at");

-- AddForeignKey
ALTER TABLE "processing_jobs" ADD CONSTRAINT "processing_jobs_assessment_id_fkey" FOREIGN KEY ("assessment_id") REFERENCES "assessments"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "job_events" ADD CONSTRAINT "job_events_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "processing_jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Beyond what schema.prisma can express: partial indexes for the hot queries, and vacuum settings
-- for a table that churns. Each partial index covers only the rows a query looks at, so it stays
-- small however many finished jobs the table holds.

-- The claim and the queue position: runnable jobs by priority, then run_at.
CREATE INDEX "processing_jobs_runnable_idx" ON "processing_jobs"("priority_rank" DESC, "run_at", "id")
    WHERE "status" IN ('QUEUED', 'RETRYING');

-- Health aggregates over a time window, answered from the index alone.
CREATE INDEX "processing_jobs_finished_idx" ON "processing_jobs"("completed_at")
    INCLUDE ("status", "type", "priority", "error_code", "processing_time_ms", "created_at", "started_at")
    WHERE "completed_at" IS NOT NULL;

-- Stalled-job detection and the health's running count.
CREATE INDEX "processing_jobs_processing_heartbeat_idx" ON "processing_jobs"("heartbeat_at")
    WHERE "status" = 'PROCESSING';

ALTER TABLE "processing_jobs" SET (
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02,
    fillfactor = 80
);
