import { setImmediate } from "node:timers/promises";
import { z } from "zod";
import { JobValidationError, PermanentJobError } from "../jobs/job-errors.js";
import { CsvFileReader } from "../validation-runs/csv-reader.js";
import type { ValidationReport } from "../validation-runs/report.js";
import { RowValidator } from "../validation-runs/row-validator.js";
import { VALIDATION_RUN_JOB_TYPE, type ValidationRunService } from "../validation-runs/validation-run-service.js";
import { defineHandler } from "./define-handler.js";

/**
 * Parsed at a time before the event loop gets a turn: a few milliseconds of work, so the API this
 * process also serves keeps answering while a large file is validated.
 */
const PARSE_SLICE_BYTES = 64 * 1024;

/** Percent reached when the last byte is read; summarizing takes the rest. */
const READ_PERCENT = 95;

/**
 * Checks an uploaded CSV file against its run's rule set, streaming it from the database chunk by
 * chunk (flat memory), and returns the report. An unreadable file fails at once with FILE_ERROR, an
 * unknown rule set with VALIDATION_FAILED: neither would fare better on a retry. Reports and logs
 * hold counts and positions, never a cell.
 */
export function createValidationRunHandler(deps: { runs: ValidationRunService; findingsPerRule: number }) {
  return defineHandler({
    type: VALIDATION_RUN_JOB_TYPE,
    payload: z.object({ runId: z.uuid() }),
    // The payload names a run whose file belongs to its owner: createValidationRun enqueues these.
    enqueuedBy: "operators",
    async run({ runId }, context): Promise<ValidationReport> {
      const run = await deps.runs.snapshot(runId);
      if (!run) throw new PermanentJobError("Validation run not found", { category: "PERMANENT_ERROR", details: { reason: "run_missing" } });
      if (run.owner !== context.job.owner) {
        throw new PermanentJobError("The run's owner does not match the job's owner", { category: "PERMANENT_ERROR", details: { reason: "owner_mismatch" } });
      }
      const ruleSet = deps.runs.ruleSet(run.ruleSet);
      if (!ruleSet) throw new JobValidationError([{ field: "ruleSet", rule: "unknown_rule_set", reason: "no rule set has this name; the ruleSets query lists them" }]);
      const file = await deps.runs.files.size(run.fileId);
      if (!file) throw new PermanentJobError("The run's file is missing", { category: "FILE_ERROR", details: { reason: "file_missing" } });

      const bytesTotal = file.bytes;
      let bytesDone = 0;
      await context.progress("reading", 0, { bytesDone, bytesTotal });
      const validator = new RowValidator(ruleSet, deps.findingsPerRule);
      const reader = new CsvFileReader(validator);
      let reported = { stage: "reading", percent: 0 };
      try {
        for await (const chunk of deps.runs.files.read(file, context.signal)) {
          for (let offset = 0; offset < chunk.length; offset += PARSE_SLICE_BYTES) {
            reader.push(chunk.subarray(offset, offset + PARSE_SLICE_BYTES));
            await setImmediate();
          }
          bytesDone += chunk.length;
          // Reading until the header is matched, then validating; one report per percent at most.
          const stage = reader.records > 0 ? "validating" : "reading";
          const percent = Math.floor((READ_PERCENT * bytesDone) / Math.max(bytesTotal, 1));
          if (stage !== reported.stage || percent > reported.percent || bytesDone === bytesTotal) {
            reported = { stage, percent };
            await context.progress(stage, percent, { bytesDone, bytesTotal });
          }
        }
        reader.end();
      } catch (error) {
        if (context.signal.aborted) {
          context.logger.info({ runId, bytesRead: bytesDone, bytesTotal }, "validation run stopped before the end of its file");
        }
        throw error;
      }
      await context.progress("summarizing", 98, { bytesDone, bytesTotal });
      const report = validator.report({ encoding: reader.encoding!, delimiter: reader.delimiter!, bytes: bytesDone });
      context.logger.info({ runId, ruleSet: ruleSet.id, rows: report.rows, findings: report.findingsTotal, bytes: bytesDone }, "validation run finished");
      return report;
    },
  });
}
