-- Queue health reads finished jobs per minute from counters rather than from the jobs themselves,
-- so its cost follows the length of its windows (at most a week of minutes), not the number of
-- jobs finished in them (README, "Migrations"; src/jobs/health.ts).

CREATE TABLE "job_outcome_counts" (
    "minute" TIMESTAMPTZ(3) NOT NULL,
    "type" TEXT NOT NULL,
    "priority" "JobPriority" NOT NULL,
    "status" "JobStatus" NOT NULL,
    -- '' for none: a key column cannot be NULL.
    "error_code" TEXT NOT NULL DEFAULT '',
    "count" INTEGER NOT NULL,
    "processing_ms_sum" BIGINT NOT NULL,
    "processing_count" INTEGER NOT NULL,
    "queue_us_sum" BIGINT NOT NULL,
    "queue_count" INTEGER NOT NULL,

    CONSTRAINT "job_outcome_counts_pkey" PRIMARY KEY ("minute", "type", "priority", "status", "error_code")
);

-- The engine's statements that finish jobs (src/jobs/sql.ts: completions, failures, cancels,
-- stalled recovery) count their rows in the same statement, aggregated per batch. Rows written
-- already finished (imports, fixtures) are counted by this trigger; its WHEN clause is checked
-- without calling the function, so enqueues, which insert waiting jobs, pay nothing for it.
CREATE FUNCTION "count_inserted_job_outcome"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO "job_outcome_counts" AS counts
    ("minute", "type", "priority", "status", "error_code", "count", "processing_ms_sum", "processing_count", "queue_us_sum", "queue_count")
  VALUES (date_trunc('minute', NEW."completed_at"), NEW."type", NEW."priority", NEW."status", coalesce(NEW."error_code", ''),
    1, coalesce(NEW."processing_time_ms", 0), CASE WHEN NEW."processing_time_ms" IS NULL THEN 0 ELSE 1 END,
    CASE WHEN NEW."started_at" >= NEW."created_at" THEN (EXTRACT(EPOCH FROM NEW."started_at" - NEW."created_at") * 1000000)::bigint ELSE 0 END,
    CASE WHEN NEW."started_at" >= NEW."created_at" THEN 1 ELSE 0 END)
  ON CONFLICT ("minute", "type", "priority", "status", "error_code") DO UPDATE SET
    "count" = counts."count" + EXCLUDED."count",
    "processing_ms_sum" = counts."processing_ms_sum" + EXCLUDED."processing_ms_sum",
    "processing_count" = counts."processing_count" + EXCLUDED."processing_count",
    "queue_us_sum" = counts."queue_us_sum" + EXCLUDED."queue_us_sum",
    "queue_count" = counts."queue_count" + EXCLUDED."queue_count";
  RETURN NULL;
END $$;

CREATE TRIGGER "processing_jobs_count_inserted_outcome" AFTER INSERT ON "processing_jobs"
  FOR EACH ROW WHEN (NEW."completed_at" IS NOT NULL AND NEW."status" IN ('COMPLETED', 'FAILED', 'VALIDATION_FAILED', 'CANCELLED'))
  EXECUTE FUNCTION "count_inserted_job_outcome"();

-- The last week's outcomes, from the jobs already finished.
INSERT INTO "job_outcome_counts"
  ("minute", "type", "priority", "status", "error_code", "count", "processing_ms_sum", "processing_count", "queue_us_sum", "queue_count")
SELECT date_trunc('minute', "completed_at"), "type", "priority", "status", coalesce("error_code", ''),
  count(*), coalesce(sum("processing_time_ms"), 0), count("processing_time_ms"),
  coalesce(sum((EXTRACT(EPOCH FROM "started_at" - "created_at") * 1000000)::bigint) FILTER (WHERE "started_at" >= "created_at"), 0),
  count(*) FILTER (WHERE "started_at" >= "created_at")
FROM "processing_jobs"
WHERE "completed_at" >= now() - interval '8 days' AND "status" IN ('COMPLETED', 'FAILED', 'VALIDATION_FAILED', 'CANCELLED')
GROUP BY 1, 2, 3, 4, 5;
