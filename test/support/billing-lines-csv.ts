// Generates billing-lines CSV files (the shipped rule set) with violations at known rows, and the
// findings they must produce: for tests and bench/validation-run.ts.

export const BILLING_HEADER = ["invoice_id", "line_number", "customer_id", "issue_date", "due_date", "description", "quantity", "unit_price", "currency", "vat_rate", "line_total", "cost_center"];

/** Text that must never leave the file: every row's description carries it. */
export const PERSONAL_MARKER = "Zoé Marchetti-Secretname";

const PRICES = ["12.50", "3.99", "100.00", "0.35", "47.10"];

export interface BillingFileOptions {
  rows: number;
  delimiter?: string;
  /** Inject violations (default true); without, every row is valid. */
  violations?: boolean;
}

/** Findings per rule id a file from `billingRows` produces, and the rows that have any. */
export interface BillingExpectation {
  byRule: Record<string, number>;
  rowsWithFindings: number;
  findingsTotal: number;
}

/** One data row (i from 1): its cells, and the rule ids it breaks. */
export function billingRow(i: number, violations = true): { cells: string[]; broken: string[] } {
  const quantity = String((i % 7) + 1);
  let unitPrice = PRICES[i % PRICES.length]!;
  let lineTotal = (Number(quantity) * Number(unitPrice)).toFixed(2);
  let invoiceId = `INV-${String(i % 1_000_000).padStart(6, "0")}`;
  let currency = "EUR";
  let dueDate = "2026-02-14";
  const broken: string[] = [];
  if (violations) {
    if (i % 100 === 0) (unitPrice = "12.505"), broken.push("unit_price.format");
    if (i % 250 === 0) (currency = "YEN"), broken.push("currency.allowed");
    if (i % 1000 === 0) (dueDate = "2026-01-01"), broken.push("due_date_not_before_issue_date");
    if (i % 777 === 0) (invoiceId = ""), broken.push("invoice_id.required");
    // Only counted when unit_price is valid: a cross-field rule skips invalid cells.
    if (i % 333 === 0) {
      lineTotal = (Number(lineTotal) + 1).toFixed(2);
      if (i % 100 !== 0) broken.push("line_total_matches");
    }
  }
  const description = `Consulting for ${PERSONAL_MARKER}, line ${i}`;
  const cells = [invoiceId, String((i % 9) + 1), `C${String(i % 100_000).padStart(5, "0")}`, "2026-01-15", dueDate, description, quantity, unitPrice, currency, "20", lineTotal, i % 2 ? "CC-FR01" : ""];
  return { cells, broken };
}

/** The file's lines (header first), each ending with CRLF, as a spreadsheet saves them. */
export function* billingLines(options: BillingFileOptions): Generator<string> {
  const delimiter = options.delimiter ?? ",";
  const quote = (cell: string) => (cell.includes(delimiter) || cell.includes('"') ? `"${cell.replaceAll('"', '""')}"` : cell);
  yield BILLING_HEADER.join(delimiter) + "\r\n";
  for (let i = 1; i <= options.rows; i++) yield billingRow(i, options.violations ?? true).cells.map(quote).join(delimiter) + "\r\n";
}

export function billingCsv(options: BillingFileOptions): string {
  return [...billingLines(options)].join("");
}

export function expectedFindings(rows: number): BillingExpectation {
  const byRule: Record<string, number> = {};
  let rowsWithFindings = 0;
  let findingsTotal = 0;
  for (let i = 1; i <= rows; i++) {
    const { broken } = billingRow(i);
    if (broken.length) rowsWithFindings++;
    for (const rule of broken) (byRule[rule] = (byRule[rule] ?? 0) + 1), findingsTotal++;
  }
  return { byRule, rowsWithFindings, findingsTotal };
}
