import { describe, expect, it } from "vitest";
import { FileProblem } from "../../src/validation-runs/file-problem.js";
import { isIsoDate, readDecimal, RowValidator } from "../../src/validation-runs/row-validator.js";
import { loadRuleSets, RuleSetError } from "../../src/validation-runs/rule-sets.js";
import { billingLines } from "../../src/validation-runs/rule-sets/billing-lines.js";
import { BILLING_HEADER, billingRow, expectedFindings } from "../support/billing-lines-csv.js";

const billing = loadRuleSets().get("billing-lines")!;

/** Validates rows given as objects by column name; returns the report. */
function validate(rows: Record<string, string>[], header = BILLING_HEADER) {
  const validator = new RowValidator(billing, 10);
  validator.header(header);
  rows.forEach((row, index) => validator.row(header.map((name) => row[name] ?? ""), index + 2));
  return validator.report({ encoding: "utf-8", delimiter: ",", bytes: 0 });
}

const validRow = () => Object.fromEntries(BILLING_HEADER.map((name, index) => [name, billingRow(1, false).cells[index]!]));
const counts = (report: ReturnType<typeof validate>) => Object.fromEntries(report.byRule.filter((rule) => rule.count > 0).map((rule) => [rule.rule, rule.count]));

describe("rule sets", () => {
  it("ships billing-lines, valid, with a cross-field rule", () => {
    expect([...loadRuleSets().keys()]).toEqual(["billing-lines"]);
    expect(billing.crossFieldRules.map((rule) => rule.kind)).toEqual(["date_order", "product"]);
  });

  it("refuses a definition that names an unknown column or a bad pattern, with every problem named", () => {
    const broken = {
      ...billingLines,
      columns: [...billingLines.columns.slice(0, -1), { name: "cost_center", type: "code" as const, pattern: "([", description: "x" }],
      crossFieldRules: [{ id: "order", kind: "date_order" as const, earlier: "issue_date", later: "nowhere", description: "x" }],
    };
    expect(() => loadRuleSets([broken])).toThrow(RuleSetError);
    expect(() => loadRuleSets([broken])).toThrow(/valid regular expression[\s\S]*unknown column "nowhere"|unknown column "nowhere"[\s\S]*valid regular expression/);
    expect(() => loadRuleSets([billingLines, billingLines])).toThrow(/defined twice/);
  });
});

describe("RowValidator on billing lines", () => {
  it("finds nothing in a valid row", () => {
    expect(validate([validRow()]).findingsTotal).toBe(0);
  });

  it("checks required cells, types, formats (dates, amounts, codes), ranges, allowed values and lengths", () => {
    const report = validate([
      { ...validRow(), invoice_id: "", line_number: "x", issue_date: "2026-02-30", unit_price: "1.234", currency: "YEN" },
      { ...validRow(), customer_id: "c00001", quantity: "0", description: "é".repeat(201), line_number: "10000" },
    ]);
    expect(counts(report)).toEqual({
      "invoice_id.required": 1,
      "line_number.type": 1,
      "issue_date.format": 1,
      "unit_price.format": 1,
      "currency.allowed": 1,
      "customer_id.format": 1,
      "quantity.range": 1,
      "description.length": 1,
      "line_number.range": 1,
    });
    expect(report.rowsWithFindings).toBe(2);
    expect(report.bySeverity).toEqual([{ severity: "error", count: 8 }, { severity: "warning", count: 1 }]);
    expect(report.findings.find((finding) => finding.rule === "currency.allowed")).toEqual({ rule: "currency.allowed", column: "currency", row: 2, severity: "error" });
  });

  it("applies cross-field rules only to valid cells", () => {
    const report = validate([
      { ...validRow(), due_date: "2026-01-01" },
      { ...validRow(), quantity: "3", unit_price: "3.99", line_total: "11.97" },
      { ...validRow(), quantity: "3", unit_price: "3.99", line_total: "11.98" },
      { ...validRow(), quantity: "3", unit_price: "bad", line_total: "1.00" },
    ]);
    expect(counts(report)).toEqual({ due_date_not_before_issue_date: 1, line_total_matches: 1, "unit_price.type": 1 });
    expect(report.findings.filter((finding) => finding.rule === "line_total_matches")).toEqual([{ rule: "line_total_matches", column: "line_total", row: 4, severity: "error" }]);
  });

  it("matches header columns in any order and case, and names the missing ones", () => {
    const shuffled = [...BILLING_HEADER].reverse().map((name) => ` ${name.toUpperCase()} `);
    expect(() => new RowValidator(billing, 10).header([...shuffled, "extra"])).not.toThrow();
    const validator = new RowValidator(billing, 10);
    const problem = (() => {
      try {
        validator.header(BILLING_HEADER.filter((name) => name !== "currency" && name !== "vat_rate"));
      } catch (error) {
        return error as FileProblem;
      }
    })();
    expect(problem).toBeInstanceOf(FileProblem);
    expect(problem!.facts.fields).toEqual(["currency", "vat_rate"]);
  });

  it("keeps the first N findings of each rule and counts them all", () => {
    const validator = new RowValidator(billing, 3);
    validator.header(BILLING_HEADER);
    for (let row = 2; row < 12; row++) validator.row(BILLING_HEADER.map((name, index) => (name === "currency" ? "YEN" : billingRow(1, false).cells[index]!)), row);
    const report = validator.report({ encoding: "utf-8", delimiter: ",", bytes: 0 });
    expect(report.byRule.find((rule) => rule.rule === "currency.allowed")!.count).toBe(10);
    expect(report.findings.map((finding) => finding.row)).toEqual([2, 3, 4]);
  });

  it("counts the generated test files' findings as the generator expects", () => {
    const validator = new RowValidator(billing, 5);
    validator.header(BILLING_HEADER);
    for (let i = 1; i <= 5000; i++) validator.row(billingRow(i).cells, i + 1);
    const expected = expectedFindings(5000);
    expect(counts(validator.report({ encoding: "utf-8", delimiter: ",", bytes: 0 }))).toEqual(expected.byRule);
  });

  it("reads amounts as the decimal pattern and Number() would, without either", () => {
    const pattern = /^[+-]?\d{1,15}(\.\d+)?$/;
    const cells = ["0", "-0", "+7", "12.5", "0.005", "1.", ".5", "1.2.3", "+", "-", "1e3", " 1", "1 ", "٣", "123456789012345", "1234567890123456", "999999999999999.999", "12345678901234.56789", "0.1234567890123456789012345"];
    let seed = 7;
    const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    for (let i = 0; i < 20000; i++) cells.push(`${random() < 0.2 ? "-" : ""}${Math.floor(random() * 10 ** Math.floor(random() * 10))}${random() < 0.7 ? `.${String(Math.floor(random() * 10000)).padStart(Math.ceil(random() * 4), "0")}` : ""}`);
    const value = new Float64Array(1);
    for (const cell of cells) {
      const decimals = readDecimal(cell, value, 0);
      expect(decimals >= 0, cell).toBe(pattern.test(cell));
      if (decimals < 0) continue;
      expect(decimals, cell).toBe(cell.includes(".") ? cell.length - cell.indexOf(".") - 1 : 0);
      expect(Object.is(value[0], Number(cell)), cell).toBe(true);
    }
  });

  it("tells real calendar dates from look-alikes", () => {
    expect(["2024-02-29", "2026-12-31", "2000-02-29"].every(isIsoDate)).toBe(true);
    expect(["2026-02-29", "1900-02-29", "2026-13-01", "2026-00-10", "2026-1-01", "2026/01/01", "20260101xx"].some(isIsoDate)).toBe(false);
  });
});
