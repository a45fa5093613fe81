import { FileProblem } from "./file-problem.js";
import { FindingTally, type ValidationReport } from "./report.js";
import type { ColumnRule, CrossFieldRule, RuleSet } from "./rule-set-schema.js";

/** What a column check can find; the rule id is `<column>.<kind>`. */
type CheckKind = "required" | "type" | "format" | "range" | "allowed" | "length";

const OK = -1;

const TEXT = 0;
const INTEGER_TYPE = 1;
const DECIMAL_TYPE = 2;
const DATE = 3;
const CODE = 4;
const ENUM = 5;

/**
 * Every column has every field (unused ones neutral: OK slots, infinite bounds), so the row loop
 * reads objects of one shape and dispatches on `kind` instead of calling a closure per cell.
 */
interface CompiledColumn {
  name: string;
  /** Position in the file, known once the header is read. */
  index: number;
  kind: number;
  required: number;
  type: number;
  format: number;
  range: number;
  allowed: number;
  length: number;
  min: number;
  max: number;
  maxLength: number;
  maxDecimals: number;
  pattern: RegExp;
  values: string[];
}

const DATE_ORDER = 0;
const PRODUCT = 1;

interface CompiledCrossRule {
  slot: number;
  kind: number;
  /** Positions in the rule set's columns; for a product, the factors then the result. */
  columns: number[];
  /** File positions of date_order's earlier and later columns, known once the header is read. */
  earlier: number;
  later: number;
  /** Past the tolerance, a product is a finding. */
  tolerance: number;
}

/**
 * A rule set compiled into per-column checks, run row by row. Works on the cell text and keeps only
 * counts and positions: no cell leaves a row's check.
 */
export class RowValidator {
  private readonly tally: FindingTally;
  private readonly columns: CompiledColumn[];
  private readonly crossRules: CompiledCrossRule[];
  private readonly cellOk: Uint8Array;
  /** The value of each numeric column's cell in the current row, parsed once for the cross rules. */
  private readonly numbers: Float64Array;
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
    this.cellOk = new Uint8Array(ruleSet.columns.length);
    this.numbers = new Float64Array(ruleSet.columns.length);
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
    for (const rule of this.crossRules) {
      if (rule.kind === DATE_ORDER) [rule.earlier, rule.later] = rule.columns.map((position) => this.columns[position]!.index) as [number, number];
    }
    this.ignoredColumns = cells.length - this.columns.length;
  };

  readonly row = (cells: string[], row: number): void => {
    this.rows++;
    const { columns, cellOk, numbers, tally, crossRules } = this;
    const before = tally.findingsTotal;
    for (let position = 0; position < columns.length; position++) {
      const column = columns[position]!;
      const cell = cells[column.index]!;
      const slot = cell.length === 0 ? column.required : checkCell(column, cell, numbers, position);
      cellOk[position] = slot === OK && cell.length > 0 ? 1 : 0;
      if (slot !== OK) tally.record(slot, row);
    }
    for (let index = 0; index < crossRules.length; index++) {
      const rule = crossRules[index]!;
      const ruleColumns = rule.columns;
      // A rule on cells that are missing or invalid would only repeat their findings.
      let checkable = true;
      for (let at = 0; at < ruleColumns.length; at++) if (cellOk[ruleColumns[at]!] === 0) checkable = false;
      if (checkable && !holds(rule, cells, numbers)) tally.record(rule.slot, row);
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

/** OK, or the slot of the rule a non-empty cell breaks; a numeric cell's value goes to `numbers`. */
function checkCell(column: CompiledColumn, cell: string, numbers: Float64Array, position: number): number {
  switch (column.kind) {
    case TEXT:
      return cell.length > column.maxLength ? column.length : OK;
    case INTEGER_TYPE:
    case DECIMAL_TYPE: {
      const decimals = readDecimal(cell, numbers, position);
      if (decimals < 0 || (decimals > 0 && column.kind === INTEGER_TYPE)) return column.type;
      if (decimals > column.maxDecimals) return column.format;
      const value = numbers[position]!;
      return value < column.min || value > column.max ? column.range : OK;
    }
    case DATE:
      return isIsoDate(cell) ? OK : column.format;
    case CODE:
      return column.pattern.test(cell) ? OK : column.format;
    default: {
      // A handful of short values: comparing them beats hashing every cell for a Set.
      const values = column.values;
      for (let index = 0; index < values.length; index++) if (values[index] === cell) return OK;
      return column.allowed;
    }
  }
}

function holds(rule: CompiledCrossRule, cells: string[], numbers: Float64Array): boolean {
  // ISO dates order as text.
  if (rule.kind === DATE_ORDER) return cells[rule.earlier]! <= cells[rule.later]!;
  const columns = rule.columns;
  const last = columns.length - 1;
  let product = 1;
  for (let factor = 0; factor < last; factor++) product *= numbers[columns[factor]!]!;
  return Math.abs(product - numbers[columns[last]!]!) <= rule.tolerance;
}

const NEVER = /(?!)/;
const NONE: string[] = [];

function compileColumn(column: ColumnRule, tally: FindingTally): CompiledColumn {
  const slot = (kind: CheckKind) => tally.add(`${column.name}.${kind}`, column.name, column.severity);
  const compiled: CompiledColumn = {
    name: column.name,
    index: -1,
    kind: TEXT,
    required: column.required ? slot("required") : OK,
    type: OK,
    format: OK,
    range: OK,
    allowed: OK,
    length: OK,
    min: -Infinity,
    max: Infinity,
    maxLength: Infinity,
    maxDecimals: Infinity,
    pattern: NEVER,
    values: NONE,
  };
  // Slots are added in the order the closures this replaced added them: the report lists rules so.
  switch (column.type) {
    case "text":
      if (column.maxLength !== undefined) [compiled.maxLength, compiled.length] = [column.maxLength, slot("length")];
      break;
    case "integer":
      compiled.kind = INTEGER_TYPE;
      compiled.type = slot("type");
      if (column.min !== undefined || column.max !== undefined) compiled.range = slot("range");
      [compiled.min, compiled.max] = [column.min ?? -Infinity, column.max ?? Infinity];
      break;
    case "decimal":
      compiled.kind = DECIMAL_TYPE;
      compiled.type = slot("type");
      if (column.maxDecimals !== undefined) compiled.format = slot("format");
      if (column.min !== undefined || column.max !== undefined) compiled.range = slot("range");
      [compiled.min, compiled.max, compiled.maxDecimals] = [column.min ?? -Infinity, column.max ?? Infinity, column.maxDecimals ?? Infinity];
      break;
    case "date":
      compiled.kind = DATE;
      compiled.format = slot("format");
      break;
    case "code":
      compiled.kind = CODE;
      compiled.format = slot("format");
      compiled.pattern = new RegExp(column.pattern);
      break;
    case "enum":
      compiled.kind = ENUM;
      compiled.allowed = slot("allowed");
      compiled.values = [...new Set(column.values)];
      break;
  }
  return compiled;
}

function compileCrossRule(rule: CrossFieldRule, ruleSet: RuleSet, tally: FindingTally): CompiledCrossRule {
  const position = (name: string) => ruleSet.columns.findIndex((column) => column.name === name);
  if (rule.kind === "date_order") {
    const slot = tally.add(rule.id, rule.later, rule.severity);
    return { slot, kind: DATE_ORDER, columns: [position(rule.earlier), position(rule.later)], earlier: -1, later: -1, tolerance: 0 };
  }
  const slot = tally.add(rule.id, rule.equals, rule.severity);
  return { slot, kind: PRODUCT, columns: [...rule.factors.map(position), position(rule.equals)], earlier: -1, later: -1, tolerance: rule.tolerance + 1e-9 };
}

const POWERS_OF_TEN = Array.from({ length: 23 }, (_, power) => 10 ** power);

/**
 * Reads `[+-]?\d{1,15}(\.\d+)?` into `values[slot]`; returns the number of decimals, or -1 when the cell
 * has another shape. Up to 15 digits in all, digits / 10^decimals is exact in both operands and
 * rounded once, so it equals Number(cell); longer cells go through Number().
 */
export function readDecimal(cell: string, values: Float64Array, slot: number): number {
  const length = cell.length;
  let at = 0;
  let code = cell.charCodeAt(0);
  const negative = code === 45;
  if (negative || code === 43) at = 1;
  let digits = 0;
  let integerDigits = 0;
  let point = -1;
  for (; at < length; at++) {
    code = cell.charCodeAt(at) - 48;
    if (code >= 0 && code <= 9) {
      digits = digits * 10 + code;
      if (point < 0) integerDigits++;
    } else if (code === -2 && point < 0) point = at;
    else return -1;
  }
  if (integerDigits === 0 || integerDigits > 15 || point === length - 1) return -1;
  const decimals = point < 0 ? 0 : length - point - 1;
  const allDigits = integerDigits + decimals;
  values[slot] = allDigits <= 15 && decimals <= 22 ? (negative ? -digits : digits) / POWERS_OF_TEN[decimals]! : Number(cell);
  return decimals;
}
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
