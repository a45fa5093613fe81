import { describe, expect, it } from "vitest";
import { storableJson, storableText, unstorableInJson } from "../../src/jobs/storable-text.js";

describe("storable text and JSON", () => {
  it("replaces NUL and unpaired surrogates in text, and keeps pairs", () => {
    expect(storableText("a\u0000b")).toBe("a\uFFFDb");
    expect(storableText("x\ud83d")).toBe("x\uFFFD");
    expect(storableText("\ude00y")).toBe("\uFFFDy");
    expect(storableText("ok 😀")).toBe("ok 😀");
    // What a cut through a pair leaves: its high half.
    expect(storableText(("x".repeat(199) + "😀").slice(0, 200))).toBe("x".repeat(199) + "\uFFFD");
  });

  it("names what jsonb would refuse in JSON.stringify's output", () => {
    expect(unstorableInJson(JSON.stringify({ a: "plain", b: "😀", c: "\n\t\u001f" }))).toBeNull();
    expect(unstorableInJson(JSON.stringify({ a: "x\u0000" }))).toBe("a NUL character");
    expect(unstorableInJson(JSON.stringify({ a: "x\ud800" }))).toBe("an unpaired UTF-16 surrogate");
    expect(unstorableInJson(JSON.stringify({ ["k\udfff"]: 1 }))).toBe("an unpaired UTF-16 surrogate");
    // A backslash followed by those letters is text, not an escape.
    expect(unstorableInJson(JSON.stringify({ a: "\\ud800 and \\u0000" }))).toBeNull();
    expect(unstorableInJson(JSON.stringify({ a: "\\\ud800" }))).toBe("an unpaired UTF-16 surrogate");
  });

  it("turns each refused escape into U+FFFD, in keys and values, and leaves the rest as it was", () => {
    const json = storableJson(JSON.stringify({ ["k\udfff"]: ["\u0000", "\\ud800", "a\ud83d", "😀"] }));
    expect(JSON.parse(json)).toEqual({ ["k\uFFFD"]: ["\uFFFD", "\\ud800", "a\uFFFD", "😀"] });
    const plain = JSON.stringify({ a: 1, b: "\\u0000" });
    expect(storableJson(plain)).toBe(plain);
  });
});
