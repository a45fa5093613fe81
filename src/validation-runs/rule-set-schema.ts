import { z } from "zod";

const identifier = z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, "lower-case letters, digits and '_', starting with a letter");
const severity = z.enum(["error", "warning"]);

const base = {
  name: identifier,
  description: z.string().min(1),
  /** An empty cell is a finding (rule `<column>.required`). */
  required: z.boolean().default(false),
  /** The severity of this column's findings. */
  severity: severity.default("error"),
};

const pattern = z.string().refine((source) => {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}, "must be a valid regular expression");

export const columnSchema = z.discriminatedUnion("type", [
  z.object({ ...base, type: z.literal("text"), maxLength: z.number().int().positive().optional() }),
  z.object({ ...base, type: z.literal("integer"), min: z.number().int().optional(), max: z.number().int().optional() }),
  // Amounts are decimals with at most two decimal places.
  z.object({ ...base, type: z.literal("decimal"), maxDecimals: z.number().int().min(0).max(12).optional(), min: z.number().optional(), max: z.number().optional() }),
  // ISO 8601 calendar dates, YYYY-MM-DD.
  z.object({ ...base, type: z.literal("date") }),
  z.object({ ...base, type: z.literal("code"), pattern }),
  z.object({ ...base, type: z.literal("enum"), values: z.array(z.string()).min(1) }),
]);

const ruleBase = { id: identifier, description: z.string().min(1), severity: severity.default("error") };

export const crossFieldRuleSchema = z.discriminatedUnion("kind", [
  // `later` must not be before `earlier` (both dates).
  z.object({ ...ruleBase, kind: z.literal("date_order"), earlier: identifier, later: identifier }),
  // factors[0] × factors[1] × … equals `equals`, within `tolerance` (all decimals).
  z.object({ ...ruleBase, kind: z.literal("product"), factors: z.array(identifier).min(2), equals: identifier, tolerance: z.number().min(0) }),
]);

export const ruleSetSchema = z
  .object({
    id: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, "lower-case letters, digits and '-'"),
    title: z.string().min(1),
    description: z.string().min(1),
    columns: z.array(columnSchema).min(1),
    crossFieldRules: z.array(crossFieldRuleSchema).default([]),
  })
  .superRefine((ruleSet, context) => {
    const names = new Set<string>();
    ruleSet.columns.forEach((column, index) => {
      if (names.has(column.name)) context.addIssue({ code: "custom", path: ["columns", index, "name"], message: `duplicate column "${column.name}"` });
      names.add(column.name);
    });
    const ids = new Set<string>();
    ruleSet.crossFieldRules.forEach((rule, index) => {
      if (ids.has(rule.id) || names.has(rule.id)) context.addIssue({ code: "custom", path: ["crossFieldRules", index, "id"], message: `duplicate rule id "${rule.id}"` });
      ids.add(rule.id);
      const referenced = rule.kind === "date_order" ? [rule.earlier, rule.later] : [...rule.factors, rule.equals];
      const expected = rule.kind === "date_order" ? "date" : "decimal";
      for (const name of referenced) {
        const column = ruleSet.columns.find((candidate) => candidate.name === name);
        if (!column) context.addIssue({ code: "custom", path: ["crossFieldRules", index], message: `unknown column "${name}"` });
        else if (column.type !== expected && !(expected === "decimal" && column.type === "integer")) {
          context.addIssue({ code: "custom", path: ["crossFieldRules", index], message: `column "${name}" must be of type ${expected}` });
        }
      }
    });
  });

export type RuleSet = z.output<typeof ruleSetSchema>;
export type RuleSetDefinition = z.input<typeof ruleSetSchema>;
export type ColumnRule = z.output<typeof columnSchema>;
export type CrossFieldRule = z.output<typeof crossFieldRuleSchema>;
export type Severity = z.output<typeof severity>;
