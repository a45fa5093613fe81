/**
 * Error details are stored for operators, and handlers put whatever they like in them. Only keys on
 * this allow-list keep their values; everything else becomes "[redacted]", so a new field holding
 * an email or a name is hidden by default rather than leaked by default.
 */
export const ALLOWED_DETAIL_KEYS = new Set([
  "category",
  "code",
  "name",
  "errno",
  "syscall",
  "field",
  "fields",
  "path",
  "rule",
  "reason",
  "failures",
  "constraint",
  "expected",
  "limit",
  "minimum",
  "maximum",
  "count",
  "attempt",
  "maxAttempts",
  "stage",
  "timeoutMs",
  "jobType",
  "statusCode",
  "retryable",
  "stack",
  "cause",
  // File problems of validation runs: positions in the file, never its content.
  "line",
  "offset",
]);

export const REDACTED = "[redacted]";
const MAX_DEPTH = 6;
const MAX_STRING = 2000;
const MAX_ARRAY = 100;

// Scrubbed even inside allowed keys: messages and stacks quote user input more often than not.
const PERSONAL_PATTERNS: [RegExp, string][] = [
  [/[\w.+-]+@[\w-]+(\.[\w-]+)+/g, "[email]"],
  [/\bBearer\s+[\w.~+/=-]+/gi, "Bearer [token]"],
  [/\beyJ[\w-]+\.[\w-]+\.[\w-]+/g, "[token]"],
  [/\+?\d[\d\s().-]{7,}\d/g, "[number]"],
];

export function scrubText(text: string, maxLength = MAX_STRING): string {
  // Cut before matching: the patterns backtrack, and a 100 kB message must not cost seconds. The
  // margin keeps an address that straddles the cut whole enough to be recognised.
  let scrubbed = text.length > maxLength + 256 ? text.slice(0, maxLength + 256) : text;
  for (const [pattern, replacement] of PERSONAL_PATTERNS) scrubbed = scrubbed.replace(pattern, replacement);
  return truncate(scrubbed, maxLength, text.length);
}

export function truncate(text: string, maxLength: number, originalLength = text.length): string {
  if (text.length <= maxLength) return text;
  const marker = `… [${originalLength - maxLength + 1} more characters]`;
  return text.slice(0, Math.max(0, maxLength - marker.length)) + marker;
}

/** A copy of `value` with every non-allowed key's value redacted and every string scrubbed. */
export function redactDetails(value: unknown, allowedKeys: ReadonlySet<string> = ALLOWED_DETAIL_KEYS): unknown {
  return redactValue(value, allowedKeys, 0);
}

function redactValue(value: unknown, allowedKeys: ReadonlySet<string>, depth: number): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === "string") return scrubText(value);
  if (typeof value === "number" || typeof value === "boolean") return value;
  if (typeof value === "bigint") return value.toString();
  if (depth >= MAX_DEPTH) return REDACTED;
  if (Array.isArray(value)) return value.slice(0, MAX_ARRAY).map((item) => redactValue(item, allowedKeys, depth + 1));
  if (typeof value === "object") {
    const result: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) {
      result[key] = allowedKeys.has(key) ? redactValue(inner, allowedKeys, depth + 1) : REDACTED;
    }
    return result;
  }
  return REDACTED;
}
