-- DropIndex
DROP INDEX "processing_jobs_idempotency_key_key";

-- AlterTable
ALTER TABLE "processing_jobs" ADD COLUMN     "lock_token" UUID;

-- CreateTable
CREATE TABLE "assessment_completions" (
    "assessment_id" UUID NOT NULL,
    "correlation_id" TEXT NOT NULL,
    "schema_version" TEXT NOT NULL,
    "job_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "assessment_completions_pkey" PRIMARY KEY ("assessment_id","correlation_id","schema_version")
);

-- CreateIndex
CREATE INDEX "assessment_completions_job_id_idx" ON "assessment_completions"("job_id");

-- CreateIndex
CREATE UNIQUE INDEX "processing_jobs_owner_idempotency_key_key" ON "processing_jobs"("owner", "idempotency_key");

-- AddForeignKey
ALTER TABLE "assessment_completions" ADD CONSTRAINT "assessment_completions_assessment_id_fkey" FOREIGN KEY ("assessment_id") REFERENCES "assessments"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "assessment_completions" ADD CONSTRAINT "assessment_completions_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "processing_jobs"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- Completions made before this table existed keep their dedupe record.
INSERT INTO "assessment_completions" ("assessment_id", "correlation_id", "schema_version", "job_id", "created_at")
SELECT "assessment_id", "correlation_id", "schema_version", "id", "created_at" FROM "processing_jobs"
WHERE "assessment_id" IS NOT NULL
ON CONFLICT DO NOTHING;
