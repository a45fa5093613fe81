import { resolveArrayConnection } from "@pothos/plugin-relay";
import type { GraphQLResolveInfo } from "graphql";
import type { ValidationRun } from "../../generated/prisma/client.js";
import type { ValidationReport } from "../../validation-runs/report.js";
import type { RuleSet } from "../../validation-runs/rule-set-schema.js";
import { ValidationRunInputError } from "../../validation-runs/validation-run-service.js";
import { loadAccessible, requireListableCursors, requireViewer } from "../access.js";
import { builder, PAGE_DEFAULT, PAGE_MAX } from "../builder.js";
import { once, type GraphQLContext } from "../context.js";
import { badInput } from "../errors.js";
import { JobType } from "./job.js";

const SeverityEnum = builder.enumType("FindingSeverity", {
  values: { ERROR: { value: "error" }, WARNING: { value: "warning" } } as const,
});

const RuleSetColumnType = builder.objectRef<RuleSet["columns"][number]>("RuleSetColumn").implement({
  description: "A column a file must have, and what its cells must hold.",
  fields: (t) => ({
    name: t.exposeString("name"),
    description: t.exposeString("description"),
    type: t.exposeString("type", { description: "text, integer, decimal, date (YYYY-MM-DD), code (a pattern) or enum." }),
    required: t.exposeBoolean("required", { description: "An empty cell is a finding." }),
    severity: t.field({ type: SeverityEnum, resolve: (column) => column.severity }),
    allowedValues: t.stringList({ nullable: true, resolve: (column) => (column.type === "enum" ? column.values : null) }),
    pattern: t.string({ nullable: true, resolve: (column) => (column.type === "code" ? column.pattern : null) }),
    maxDecimals: t.int({ nullable: true, resolve: (column) => (column.type === "decimal" ? (column.maxDecimals ?? null) : null) }),
  }),
});

const CrossFieldRuleType = builder.objectRef<RuleSet["crossFieldRules"][number]>("CrossFieldRule").implement({
  description: "A rule over several cells of a row.",
  fields: (t) => ({
    id: t.exposeString("id"),
    kind: t.exposeString("kind"),
    description: t.exposeString("description"),
    severity: t.field({ type: SeverityEnum, resolve: (rule) => rule.severity }),
    columns: t.stringList({ resolve: (rule) => (rule.kind === "date_order" ? [rule.earlier, rule.later] : [...rule.factors, rule.equals]) }),
  }),
});

const RuleSetType = builder.objectRef<RuleSet>("RuleSet").implement({
  description: "What a validation run checks a file against. Column rules have ids `<column>.<check>` (required, type, format, range, allowed, length).",
  fields: (t) => ({
    id: t.exposeString("id"),
    title: t.exposeString("title"),
    description: t.exposeString("description"),
    columns: t.field({ type: [RuleSetColumnType], resolve: (ruleSet) => ruleSet.columns }),
    crossFieldRules: t.field({ type: [CrossFieldRuleType], resolve: (ruleSet) => ruleSet.crossFieldRules }),
  }),
});

builder.queryField("ruleSets", (t) =>
  t.field({ type: [RuleSetType], description: "The rule sets createValidationRun accepts.", resolve: (_root, _args, context) => context.services.validationRuns.ruleSets() }),
);

type FindingShape = ValidationReport["findings"][number];

const FindingType = builder.objectRef<FindingShape>("ValidationFinding").implement({
  description: "A rule one row breaks: where, never the cell's content.",
  fields: (t) => ({
    rule: t.exposeString("rule"),
    column: t.exposeString("column"),
    row: t.exposeInt("row", { description: "Spreadsheet row: the header is row 1." }),
    severity: t.field({ type: SeverityEnum, resolve: (finding) => finding.severity }),
  }),
});

const RuleCountType = builder.objectRef<ValidationReport["byRule"][number]>("ValidationRuleCount").implement({
  fields: (t) => ({
    rule: t.exposeString("rule"),
    column: t.exposeString("column"),
    severity: t.field({ type: SeverityEnum, resolve: (count) => count.severity }),
    count: t.exposeInt("count"),
  }),
});

const SeverityCountType = builder.objectRef<ValidationReport["bySeverity"][number]>("ValidationSeverityCount").implement({
  fields: (t) => ({
    severity: t.field({ type: SeverityEnum, resolve: (count) => count.severity }),
    count: t.exposeInt("count"),
  }),
});

const ReportType = builder.objectRef<ValidationReport>("ValidationReport").implement({
  description: "Counts by rule and severity; the findings themselves are ValidationRun.findings.",
  fields: (t) => ({
    ruleSet: t.exposeString("ruleSet"),
    encoding: t.exposeString("encoding", { description: "utf-8, utf-8-bom or windows-1252, as detected." }),
    delimiter: t.exposeString("delimiter", { description: "As detected from the header." }),
    bytes: t.exposeFloat("bytes"),
    rows: t.exposeInt("rows", { description: "Data rows, the header excluded." }),
    rowsWithFindings: t.exposeInt("rowsWithFindings"),
    findingsTotal: t.exposeInt("findingsTotal"),
    findingsPerRule: t.exposeInt("findingsPerRule", { description: "How many findings of each rule are kept (all are counted)." }),
    ignoredColumns: t.exposeInt("ignoredColumns", { description: "Header columns the rule set does not know." }),
    bySeverity: t.field({ type: [SeverityCountType], resolve: (report) => report.bySeverity }),
    byRule: t.field({ type: [RuleCountType], resolve: (report) => report.byRule }),
  }),
});

/** The run's report: its job's result once COMPLETED; read once per run and request. */
function reportOf(run: ValidationRun, context: GraphQLContext, info: GraphQLResolveInfo): Promise<ValidationReport | null> {
  return once(context, info, `validation-report:${run.id}`, async () => {
    if (!run.jobId) return null;
    const job = await context.services.prisma.processingJob.findUnique({ where: { id: run.jobId }, select: { status: true, result: true } });
    return job?.status === "COMPLETED" ? (job.result as unknown as ValidationReport) : null;
  });
}

builder.prismaObject("ValidationRun", {
  description: "An uploaded CSV file checked against a rule set by its job; the report comes with the job's completion.",
  fields: (t) => ({
    id: t.exposeID("id"),
    owner: t.exposeString("owner"),
    ruleSet: t.exposeString("ruleSet"),
    correlationId: t.exposeString("correlationId", { nullable: true }),
    fileBytes: t.float({ resolve: (run) => Number(run.fileBytes) }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    job: t.relation("job", { nullable: true, description: "Its validation-run job; follow it with jobProgress (byte progress in bytesDone/bytesTotal)." }),
    report: t.field({ type: ReportType, nullable: true, description: "Null until the job is COMPLETED.", resolve: (run, _args, context, info) => reportOf(run, context, info) }),
    findings: t.connection({
      type: FindingType,
      description: "The kept findings (ValidationReport.findingsPerRule per rule), by rule then row; empty until COMPLETED.",
      args: { rule: t.arg.string({ required: false, description: "Only this rule id's findings." }) },
      resolve: async (run, args, context, info) => {
        const findings = (await reportOf(run, context, info))?.findings ?? [];
        return resolveArrayConnection({ args, defaultSize: PAGE_DEFAULT, maxSize: PAGE_MAX }, args.rule ? findings.filter((finding) => finding.rule === args.rule) : findings);
      },
    }),
  }),
});

const findRun = (context: GraphQLContext) => (id: string) => context.services.validationRuns.find(id);

builder.queryField("validationRun", (t) =>
  t.prismaField({
    type: "ValidationRun",
    authScopes: { authenticated: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (query, _root, args, context) => {
      const run = await loadAccessible(context, String(args.id), "Validation run", findRun(context));
      return context.services.prisma.validationRun.findUniqueOrThrow({ ...query, where: { id: run.id } });
    },
  }),
);

builder.queryField("validationRuns", (t) =>
  t.prismaConnection({
    type: "ValidationRun",
    cursor: "id",
    description: "Validation runs, newest first: the caller's own (operators: everybody's).",
    authScopes: { authenticated: true },
    defaultSize: PAGE_DEFAULT,
    maxSize: PAGE_MAX,
    resolve: async (query, _root, args, context) => {
      const viewer = requireViewer(context);
      const owner = viewer.role === "operator" ? undefined : viewer.id;
      await requireListableCursors(args, async (id) => {
        const run = await context.services.prisma.validationRun.findUnique({ where: { id }, select: { owner: true } });
        return run !== null && (owner === undefined || run.owner === owner);
      });
      return context.services.prisma.validationRun.findMany({
        ...query,
        where: owner === undefined ? {} : { owner },
        orderBy: [{ createdAt: "desc" }, { id: "desc" }],
      });
    },
  }),
);

interface CreatedPayload {
  runId: string;
  created: boolean;
}

const CreateValidationRunPayload = builder.objectRef<CreatedPayload>("CreateValidationRunPayload").implement({
  fields: (t) => ({
    run: t.prismaField({
      type: "ValidationRun",
      resolve: (query, payload, _args, context) => context.services.prisma.validationRun.findUniqueOrThrow({ ...query, where: { id: payload.runId } }),
    }),
    job: t.field({
      type: JobType,
      nullable: true,
      resolve: async (payload, _args, context) => {
        const run = await context.services.prisma.validationRun.findUnique({ where: { id: payload.runId }, select: { job: true } });
        return run?.job ?? null;
      },
    }),
    created: t.exposeBoolean("created", { description: "False when this correlation id already had a run: that run comes back and this upload is dropped." }),
  }),
});

builder.mutationField("createValidationRun", (t) =>
  t.field({
    type: CreateValidationRunPayload,
    description:
      "Validates an uploaded CSV file against a rule set in a validation-run job. Send it as a multipart request (GraphQL multipart request spec) with an x-graphql-yoga-csrf header; larger than VALIDATION_MAX_UPLOAD_BYTES is refused with 413 FILE_TOO_LARGE. Exactly one run per (caller, correlationId).",
    authScopes: { authenticated: true },
    args: {
      file: t.arg({ type: "Upload", required: true }),
      ruleSet: t.arg.string({ required: true, description: "A rule set id from the ruleSets query; an unknown one ends the job VALIDATION_FAILED." }),
      correlationId: t.arg.string({ required: false, description: "Repeated calls with the same one get the same run. Without one, every call is a new run." }),
    },
    resolve: async (_root, args, context) => {
      const viewer = requireViewer(context);
      const file = context.uploads?.take(args.file) ?? null;
      if (!file) throw badInput("file must be sent as a part of a multipart request (GraphQL multipart request spec)", [{ field: "file", message: "expected an uploaded file" }]);
      const runs = context.services.validationRuns;
      try {
        const created = await runs.create(viewer.id, { ruleSet: args.ruleSet, correlationId: args.correlationId, file });
        if (!created.created) await runs.files.delete(file.id);
        return { runId: created.runId, created: created.created };
      } catch (error) {
        await runs.files.delete(file.id).catch(() => undefined);
        if (error instanceof ValidationRunInputError) throw badInput(error.message);
        throw error;
      }
    },
  }),
);
