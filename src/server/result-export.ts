import type { IncomingMessage, ServerResponse } from "node:http";
import type { AssessmentResult } from "../assessments/scoring.js";
import { requireUuid } from "../graphql/access.js";
import { bearerToken, type Viewer } from "../graphql/auth.js";
import type { JobService } from "../jobs/job-service.js";
import type { Job } from "../jobs/types.js";
import type { ValidationReport } from "../validation-runs/report.js";
import { VALIDATION_RUN_JOB_TYPE } from "../validation-runs/validation-run-service.js";

const EXPORT_PATH = /^\/jobs\/([0-9a-f-]{36})\/result\.(json|csv)$/i;

/**
 * GET /jobs/:id/result.json and /jobs/:id/result.csv: a completed job's result, for its owner or
 * an operator (Bearer token). Returns false when the path is not an export path.
 */
export function handleResultExport(
  request: IncomingMessage,
  response: ServerResponse,
  deps: { jobs: JobService; verifyToken: (token: string) => Promise<Viewer> },
): boolean {
  const match = EXPORT_PATH.exec((request.url ?? "").split("?")[0] ?? "");
  if (!match) return false;
  void (async () => {
    if (request.method !== "GET") return sendError(response, 405, "METHOD_NOT_ALLOWED", "Use GET");
    const token = bearerToken(request.headers.authorization);
    if (!token) return sendError(response, 401, "UNAUTHENTICATED", "Authentication required: send a Bearer token");
    let viewer: Viewer;
    try {
      viewer = await deps.verifyToken(token);
    } catch {
      return sendError(response, 401, "UNAUTHENTICATED", "The token is invalid or expired");
    }
    // The path pattern lets through anything of the right length made of hex digits and dashes; a
    // malformed id would otherwise reach PostgreSQL and fail there as an unexpected error.
    let id: string;
    try {
      id = requireUuid(match[1]!);
    } catch {
      return sendError(response, 400, "BAD_USER_INPUT", "The job id must be a UUID");
    }
    const job = await deps.jobs.find(id);
    if (!job) return sendError(response, 404, "NOT_FOUND", "Job not found");
    if (viewer.role !== "operator" && viewer.id !== job.owner) return sendError(response, 403, "FORBIDDEN", "You may not access this job");
    if (job.status !== "COMPLETED") return sendError(response, 409, "CONFLICT", `The job has no result yet; it is ${job.status}`);
    const format = match[2]!.toLowerCase();
    const filename = `job-${job.id}-result.${format}`;
    const headers = { "cache-control": "no-store", "content-disposition": `attachment; filename="${filename}"` };
    if (format === "json") {
      response.writeHead(200, { ...headers, "content-type": "application/json; charset=utf-8" });
      response.end(JSON.stringify(job.result, null, 2));
    } else {
      response.writeHead(200, { ...headers, "content-type": "text/csv; charset=utf-8" });
      response.end(resultToCsv(job));
    }
  })().catch(() => sendError(response, 500, "INTERNAL_SERVER_ERROR", "Unexpected error."));
  return true;
}

/** Assessment results become one row per scored question plus totals; other results, key/value rows. */
export function resultToCsv(job: Pick<Job, "type" | "result">): string {
  const result = job.result as Partial<AssessmentResult> | null;
  if (job.type === "assessment" && result && Array.isArray(result.questions)) {
    const rows: unknown[][] = [["section", "question_id", "prompt", "answered", "points", "max_points"]];
    for (const question of result.questions) {
      rows.push([question.section, question.questionId, question.prompt, question.answered, question.points, question.maxPoints]);
    }
    for (const section of result.sections ?? []) rows.push([section.section, "", "section total", "", section.points, section.maxPoints]);
    rows.push(["", "", "total", "", result.points, result.maxPoints]);
    rows.push(["", "", "percent", "", result.percent, 100]);
    rows.push(["", "", "band", "", result.band, ""]);
    return toCsv(rows);
  }
  if (job.type === VALIDATION_RUN_JOB_TYPE && result && Array.isArray((job.result as Partial<ValidationReport>).byRule)) return reportToCsv(job.result as ValidationReport);
  return toCsv([["key", "value"], ...flatten(job.result, "")]);
}

/** A validation report: totals, then a count per rule, then the kept findings, one row each. */
function reportToCsv(report: ValidationReport): string {
  const rows: unknown[][] = [["record", "rule", "column", "severity", "row", "count"]];
  rows.push(["total", "rows", "", "", "", report.rows]);
  rows.push(["total", "rows_with_findings", "", "", "", report.rowsWithFindings]);
  rows.push(["total", "findings", "", "", "", report.findingsTotal]);
  for (const count of report.bySeverity) rows.push(["severity", "", "", count.severity, "", count.count]);
  for (const count of report.byRule) rows.push(["rule", count.rule, count.column, count.severity, "", count.count]);
  for (const finding of report.findings) rows.push(["finding", finding.rule, finding.column, finding.severity, finding.row, ""]);
  return toCsv(rows);
}

function flatten(value: unknown, prefix: string): unknown[][] {
  if (value === null || typeof value !== "object") return [[prefix || "value", value]];
  return Object.entries(value).flatMap(([key, inner]) => flatten(inner, prefix ? `${prefix}.${key}` : key));
}

function toCsv(rows: unknown[][]): string {
  return rows.map((row) => row.map(csvCell).join(",")).join("\r\n") + "\r\n";
}

function csvCell(value: unknown): string {
  let text = value === null || value === undefined ? "" : String(value);
  // Spreadsheets execute cells that start with these; a leading quote keeps them text.
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function sendError(response: ServerResponse, status: number, code: string, message: string): void {
  if (response.headersSent) return void response.end();
  response.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  response.end(JSON.stringify({ error: { code, message } }));
}
