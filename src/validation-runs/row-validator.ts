import { FileProblem } from "./file-problem.js";
import { FindingTally, type ValidationReport } from "./report.js";
import type { ColumnRule, CrossFieldRule, RuleSet } from "./rule-set-schema.js";

/** What a column check can find; the rule id is `<column>.<kind>`. */
type CheckKind = "required" | "type" | "format" | "range" | "allowed" | "length";

const OK = -1;

interface CompiledColumn {
  name: string;
  /** Position in the file, known once the header is read. */
  index: number;
  required: number | null;
  /** Returns OK or the slot of the rule the cell breaks. */
  check: (cell: string) => number;
}

interface CompiledCrossRule {
  slot: number;
  /** Positions in the rule set's columns. */
  columns: number[];
  /** Positions in the file, known once the header is read. */
  indexes: number[];
  holds: (cells: string[], indexes: number[]) => boolean;
}

/**
 * A rule set compiled into one function per column, checked row by row. Works on the cell text and
 * keeps only counts and positions: no cell leaves a row's check.
 */
export class RowValidator {
  private readonly tally: FindingTally;
  private readonly columns: CompiledColumn[];
  private readonly crossRules: CompiledCrossRule[];
  private readonly cellOk: boolean[];
  rows = 0;
  rowsWithFindings = 0;
  ignoredColumns = 0;

  constructor(
    readonly ruleSet: RuleSet,
    findingsPerRule: number,
  ) {
    this.tally = new FindingTally(findingsPerRule);
    this.columns = ruleSet.columns.map((column) => compileColumn(column, this.tally));
    this.crossRules = ruleSet.crossFieldRules.map((rule) => compileCrossRule(rule, ruleSet, this.tally));
    this.cellOk = ruleSet.columns.map(() => true);
  }

  /** Matches header cells to the rule set's columns (any order, case and surrounding spaces ignored). */
  readonly header = (cells: string[]): void => {
    const positions = new Map<string, number>();
    cells.forEach((cell, index) => {
      const name = cell.trim().toLowerCase();
      if (!positions.has(name)) positions.set(name, index);
    });
    const missing = this.columns.filter((column) => !positions.has(column.name)).map((column) => column.name);
    if (missing.length > 0) {
      throw new FileProblem("missing_columns", `The header lacks the column(s) ${missing.join(", ")} of rule set ${this.ruleSet.id}`, { fields: missing });
    }
    for (const column of this.columns) column.index = positions.get(column.name)!;
    for (const rule of this.crossRules) rule.indexes = rule.columns.map((position) => this.columns[position]!.index);
    this.ignoredColumns = cells.length - this.columns.length;
  };

  readonly row = (cells: string[], row: number): void => {
    this.rows++;
    const before = this.tally.findingsTotal;
    const { columns, cellOk, tally } = this;
    for (let position = 0; position < columns.length; position++) {
      const column = columns[position]!;
      const cell = cells[column.index]!;
      let slot: number;
      if (cell.length === 0) slot = column.required ?? OK;
      else slot = column.check(cell);
      cellOk[position] = slot === OK && cell.length > 0;
      if (slot !== OK) tally.record(slot, row);
    }
    for (const rule of this.crossRules) {
      // A rule on cells that are missing or invalid would only repeat their findings.
      if (rule.columns.every((position) => cellOk[position]) && !rule.holds(cells, rule.indexes)) {
        tally.record(rule.slot, row);
      }
    }
    if (tally.findingsTotal !== before) this.rowsWithFindings++;
  };

  report(facts: { encoding: string; delimiter: string; bytes: number }): ValidationReport {
    return {
      ruleSet: this.ruleSet.id,
      ...facts,
      rows: this.rows,
      rowsWithFindings: this.rowsWithFindings,
      findingsTotal: this.tally.findingsTotal,
      bySeverity: this.tally.bySeverity(),
      byRule: this.tally.rules.map((rule) => ({ ...rule })),
      findings: this.tally.findings(),
      findingsPerRule: this.tally.limit,
      ignoredColumns: this.ignoredColumns,
    };
  }
}

function compileColumn(column: ColumnRule, tally: FindingTally): CompiledColumn {
  const slot = (kind: CheckKind) => tally.add(`${column.name}.${kind}`, column.name, column.severity);
  const required = column.required ? slot("required") : null;
  return { name: column.name, index: -1, required, check: compileCheck(column, slot) };
}

function compileCheck(column: ColumnRule, slot: (kind: CheckKind) => number): (cell: string) => number {
  switch (column.type) {
    case "text": {
      if (column.maxLength === undefined) return () => OK;
      const max = column.maxLength;
      const length = slot("length");
      return (cell) => (cell.length > max ? length : OK);
    }
    case "integer": {
      const type = slot("type");
      const range = column.min !== undefined || column.max !== undefined ? slot("range") : OK;
      const [min, max] = [column.min ?? -Infinity, column.max ?? Infinity];
      return (cell) => {
        if (!INTEGER.test(cell)) return type;
        const value = Number(cell);
        return value < min || value > max ? range : OK;
      };
    }
    case "decimal": {
      const type = slot("type");
      const format = column.maxDecimals !== undefined ? slot("format") : OK;
      const range = column.min !== undefined || column.max !== undefined ? slot("range") : OK;
      const [min, max, decimals] = [column.min ?? -Infinity, column.max ?? Infinity, column.maxDecimals ?? Infinity];
      return (cell) => {
        if (!DECIMAL.test(cell)) return type;
        const point = cell.indexOf(".");
        if (point >= 0 && cell.length - point - 1 > decimals) return format;
        const value = Number(cell);
        return value < min || value > max ? range : OK;
      };
    }
    case "date": {
      const format = slot("format");
      return (cell) => (isIsoDate(cell) ? OK : format);
    }
    case "code": {
      const format = slot("format");
      const pattern = new RegExp(column.pattern);
      return (cell) => (pattern.test(cell) ? OK : format);
    }
    case "enum": {
      const allowed = slot("allowed");
      const values = new Set(column.values);
      return (cell) => (values.has(cell) ? OK : allowed);
    }
  }
}

function compileCrossRule(rule: CrossFieldRule, ruleSet: RuleSet, tally: FindingTally): CompiledCrossRule {
  const position = (name: string) => ruleSet.columns.findIndex((column) => column.name === name);
  if (rule.kind === "date_order") {
    const slot = tally.add(rule.id, rule.later, rule.severity);
    // ISO dates order as text.
    return { slot, columns: [position(rule.earlier), position(rule.later)], indexes: [], holds: (cells, [earlier, later]) => cells[earlier!]! <= cells[later!]! };
  }
  const slot = tally.add(rule.id, rule.equals, rule.severity);
  const tolerance = rule.tolerance + 1e-9;
  return {
    slot,
    columns: [...rule.factors.map(position), position(rule.equals)],
    indexes: [],
    holds: (cells, indexes) => {
      let product = 1;
      for (let factor = 0; factor < indexes.length - 1; factor++) product *= Number(cells[indexes[factor]!]);
      return Math.abs(product - Number(cells[indexes[indexes.length - 1]!])) <= tolerance;
    },
  };
}

const INTEGER = /^[+-]?\d{1,15}$/;
const DECIMAL = /^[+-]?\d{1,15}(\.\d+)?$/;
const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** YYYY-MM-DD naming a day that exists, without building a Date per cell. */
export function isIsoDate(cell: string): boolean {
  if (cell.length !== 10 || cell.charCodeAt(4) !== 45 || cell.charCodeAt(7) !== 45) return false;
  let year = 0;
  for (let index = 0; index < 4; index++) {
    const digit = cell.charCodeAt(index) - 48;
    if (digit < 0 || digit > 9) return false;
    year = year * 10 + digit;
  }
  const month = twoDigits(cell, 5);
  const day = twoDigits(cell, 8);
  if (month < 1 || month > 12 || day < 1 || day > DAYS_IN_MONTH[month - 1]!) return false;
  return month !== 2 || day < 29 || (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0));
}

function twoDigits(cell: string, at: number): number {
  const tens = cell.charCodeAt(at) - 48;
  const units = cell.charCodeAt(at + 1) - 48;
  return tens < 0 || tens > 9 || units < 0 || units > 9 ? -1 : tens * 10 + units;
}
