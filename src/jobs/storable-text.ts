/**
 * Text and JSON as PostgreSQL can store them. It refuses U+0000 in text and in jsonb, and an
 * unpaired UTF-16 surrogate in jsonb: JSON.stringify writes one as an escape ("\ud800") that the
 * jsonb parser rejects. The engine writes the outcomes and progress of many jobs in one statement,
 * so one such character from one handler would fail every job of that statement.
 */

const REPLACEMENT = "\uFFFD";

/** `text` with each NUL and each unpaired surrogate replaced by U+FFFD. */
export function storableText(text: string): string {
  const wellFormed = text.toWellFormed();
  return wellFormed.includes("\u0000") ? wellFormed.replaceAll("\u0000", REPLACEMENT) : wellFormed;
}

// An escaped backslash, or the escape of NUL or of a lone surrogate (JSON.stringify writes a pair
// as its characters, and its escapes in lower case). Matching escaped backslashes too keeps
// "\\ud800", a backslash followed by those letters, as it is.
const UNSTORABLE_ESCAPE = /\\(?:\\|u0000|ud[89a-f][0-9a-f]{2})/g;

/** What in JSON.stringify's output jsonb would refuse, named for an error message; null if nothing. */
export function unstorableInJson(json: string): "a NUL character" | "an unpaired UTF-16 surrogate" | null {
  if (!json.includes("\\u")) return null;
  for (const [escape] of json.matchAll(UNSTORABLE_ESCAPE)) {
    if (escape === "\\u0000") return "a NUL character";
    if (escape !== "\\\\") return "an unpaired UTF-16 surrogate";
  }
  return null;
}

/** JSON.stringify's output with each NUL and lone surrogate, in keys and values, as U+FFFD. */
export function storableJson(json: string): string {
  return unstorableInJson(json) === null ? json : json.replace(UNSTORABLE_ESCAPE, (escape) => (escape === "\\\\" ? escape : "\\ufffd"));
}
