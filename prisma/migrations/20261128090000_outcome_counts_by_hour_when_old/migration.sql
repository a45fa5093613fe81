-- Jobs inserted already finished (imports, fixtures) are counted by the hour when they finished
-- before the hour two hours ago, as the fold would leave them (ROLL_UP_OUTCOME_COUNTS in
-- src/jobs/sql.ts), instead of by the minute. A week of a million imported jobs wrote 114,000
-- minute rows that every health computation read until the next fold, and the fold then left
-- 105,000 dead rows for vacuum; by the hour they are 9,400 rows from the start. Otherwise as in
-- 20261126090000_job_outcome_counts.
CREATE OR REPLACE FUNCTION "count_inserted_job_outcome"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO "job_outcome_counts" AS counts
    ("minute", "type", "priority", "status", "error_code", "count", "processing_ms_sum", "processing_count", "queue_us_sum", "queue_count")
  VALUES (
    CASE WHEN NEW."completed_at" < date_trunc('hour', now() - interval '2 hours')
      THEN date_trunc('hour', NEW."completed_at") ELSE date_trunc('minute', NEW."completed_at") END,
    NEW."type", NEW."priority", NEW."status", coalesce(NEW."error_code", ''),
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
