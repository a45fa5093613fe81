import type { Severity } from "./rule-set-schema.js";

/** One rule broken in one row: where, never what (the cell may hold personal data). */
export interface Finding {
  rule: string;
  /** The column checked; a cross-field rule names the column it concludes on. */
  column: string;
  /** Spreadsheet row: the header is row 1. */
  row: number;
  severity: Severity;
}

export interface RuleCount {
  rule: string;
  column: string;
  severity: Severity;
  count: number;
}

/** A validation run's result: what the job stores, the API serves and the export writes. */
export interface ValidationReport {
  ruleSet: string;
  encoding: string;
  delimiter: string;
  bytes: number;
  /** Data rows, the header excluded. */
  rows: number;
  rowsWithFindings: number;
  findingsTotal: number;
  bySeverity: { severity: Severity; count: number }[];
  /** Every rule of the set, broken or not, in the set's order. */
  byRule: RuleCount[];
  /** The first `findingsPerRule` findings of each rule, by rule then row. */
  findings: Finding[];
  findingsPerRule: number;
  /** Header cells that name no column of the rule set (counted only: their names are file content). */
  ignoredColumns: number;
}

/** Counts every finding and keeps the first `limit` of each rule, in flat memory whatever the file's size. */
export class FindingTally {
  readonly rules: RuleCount[] = [];
  private readonly kept: Finding[][] = [];
  findingsTotal = 0;

  constructor(readonly limit: number) {}

  /** A slot per rule, counted in the order rules are added. */
  add(rule: string, column: string, severity: Severity): number {
    this.rules.push({ rule, column, severity, count: 0 });
    this.kept.push([]);
    return this.rules.length - 1;
  }

  record(slot: number, row: number): void {
    const rule = this.rules[slot]!;
    rule.count++;
    this.findingsTotal++;
    const kept = this.kept[slot]!;
    if (kept.length < this.limit) kept.push({ rule: rule.rule, column: rule.column, row, severity: rule.severity });
  }

  findings(): Finding[] {
    return this.kept.flat();
  }

  bySeverity(): { severity: Severity; count: number }[] {
    return (["error", "warning"] as const).map((severity) => ({
      severity,
      count: this.rules.reduce((sum, rule) => sum + (rule.severity === severity ? rule.count : 0), 0),
    }));
  }
}
