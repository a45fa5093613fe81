-- Each state change of a job (a transition, a completion, a failure) adds one to its revision, in
-- the statement that makes it. Changes are published by different actors (the enqueuer a job's
-- creation, a worker its claim, another instance its outcome) and one can overtake another on the
-- way to a subscriber; a subscriber drops a change older than one it has already shown
-- (src/events/change-order.ts). Progress reports keep the revision of their attempt's claim.
-- A constant default: PostgreSQL adds the column without rewriting the table.
ALTER TABLE "processing_jobs" ADD COLUMN "revision" INTEGER NOT NULL DEFAULT 1;
