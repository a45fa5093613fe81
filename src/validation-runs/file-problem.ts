import { PermanentJobError } from "../jobs/job-errors.js";

/** Why a file cannot be read; each has a user message in src/i18n/messages.ts (`fileProblem.<reason>`). */
export type FileProblemReason = "empty_file" | "unsupported_encoding" | "bad_encoding" | "malformed_csv" | "record_too_long" | "missing_columns";

/**
 * An unreadable file: the job fails at once with FILE_ERROR (reading it again gives the same
 * answer). Message and details name lines, byte offsets and the rule set's column names, never the
 * file's content.
 */
export class FileProblem extends PermanentJobError {
  override name = "FileProblem";
  constructor(
    readonly reason: FileProblemReason,
    message: string,
    readonly facts: { line?: number; offset?: number; fields?: string[]; code?: string } = {},
  ) {
    super(message, { category: "FILE_ERROR", details: { reason, ...facts } });
  }
}
