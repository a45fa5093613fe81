import type { RuleSetDefinition } from "../rule-set-schema.js";

/**
 * Invoice lines exported from a billing system, one row per line of an invoice. Documented in
 * docs/rule-sets.md; the columns may come in any order, extra columns are ignored.
 */
export const billingLines: RuleSetDefinition = {
  id: "billing-lines",
  title: "Billing lines",
  description: "Invoice lines exported from a billing system: one row per invoice line, amounts in the invoice's currency.",
  columns: [
    { name: "invoice_id", type: "code", pattern: "^INV-[0-9]{6}$", required: true, description: "Invoice number, INV- and six digits." },
    { name: "line_number", type: "integer", min: 1, max: 9999, required: true, description: "Position of the line on its invoice, 1 to 9999." },
    { name: "customer_id", type: "code", pattern: "^C[0-9]{5}$", required: true, description: "Customer number, C and five digits." },
    { name: "issue_date", type: "date", required: true, description: "Invoice date, YYYY-MM-DD." },
    { name: "due_date", type: "date", required: true, description: "Payment due date, YYYY-MM-DD; not before the issue date." },
    { name: "description", type: "text", maxLength: 200, severity: "warning", description: "What was sold; at most 200 characters (longer is a warning)." },
    { name: "quantity", type: "decimal", maxDecimals: 3, min: 0.001, required: true, description: "Quantity, positive, at most three decimals." },
    { name: "unit_price", type: "decimal", maxDecimals: 2, min: 0, required: true, description: "Unit price excluding VAT, an amount with at most two decimals." },
    { name: "currency", type: "enum", values: ["EUR", "USD", "GBP", "CHF"], required: true, description: "ISO 4217 currency code: EUR, USD, GBP or CHF." },
    { name: "vat_rate", type: "enum", values: ["0", "2.1", "5.5", "10", "20"], required: true, description: "VAT rate in percent, one of the French rates." },
    { name: "line_total", type: "decimal", maxDecimals: 2, required: true, description: "Line total excluding VAT, an amount with at most two decimals." },
    { name: "cost_center", type: "code", pattern: "^CC-[A-Z]{2}[0-9]{2}$", severity: "warning", description: "Optional cost center, CC- two letters and two digits." },
  ],
  crossFieldRules: [
    { id: "due_date_not_before_issue_date", kind: "date_order", earlier: "issue_date", later: "due_date", description: "The due date is on or after the issue date." },
    {
      id: "line_total_matches",
      kind: "product",
      factors: ["quantity", "unit_price"],
      equals: "line_total",
      tolerance: 0.005,
      description: "line_total equals quantity × unit_price, to the cent.",
    },
  ],
};
