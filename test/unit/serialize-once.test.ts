import { describe, expect, it } from "vitest";
import { SerializeOnce } from "../../src/server/serialize-once.js";

// What graphql-ws does with a message: stringify it with the replacer, then send the text.
const sent = (serializer: SerializeOnce, message: object) => serializer.embed(JSON.stringify(message, serializer.replacer)) as string;

describe("SerializeOnce", () => {
  it("sends every message as plain JSON.stringify would, building a shared result's text once", () => {
    const serializer = new SerializeOnce();
    let serialized = 0;
    const data = { jobUpdateBatches: { changes: [{ jobId: "a", status: "COMPLETED" }] } };
    const result = {
      get data() {
        serialized++;
        return data;
      },
    };
    for (const id of ["1", "2", "3"]) {
      const message = { id, type: "next", payload: result };
      expect(sent(serializer, message)).toBe(JSON.stringify(message));
    }
    expect(serialized).toBe(4); // once for the text kept, once for the comparison each time above
  });

  it("is not fooled by an operation id or by data that look like its token", () => {
    const serializer = new SerializeOnce();
    const tricky = ['"payload":"conveyor:serialized-payload:1"', "conveyor:serialized-payload:2", '","payload":"x'];
    for (const id of tricky) {
      const payload = { data: { note: `"payload":"conveyor:serialized-payload:${id.length}"`, payload: { nested: id } } };
      const message = { id, type: "next", payload };
      const text = sent(serializer, message);
      expect(text).toBe(JSON.stringify(message));
      expect(JSON.parse(text)).toEqual(message);
    }
  });

  it("leaves messages without an object payload as they are, and forgets messages never sent", () => {
    const serializer = new SerializeOnce();
    for (const message of [{ type: "pong" }, { type: "ping", payload: "hello" }, { id: "9", type: "complete" }]) {
      expect(sent(serializer, message)).toBe(JSON.stringify(message));
    }
    // Stringified, never sent: the tokens kept stay bounded, and a later message is still whole.
    for (let i = 0; i < 5000; i++) JSON.stringify({ id: String(i), type: "next", payload: { data: i } }, serializer.replacer);
    expect((serializer as unknown as { pending: Map<string, string> }).pending.size).toBeLessThanOrEqual(1000);
    const message = { id: "last", type: "error", payload: [{ message: "nope" }] };
    expect(sent(serializer, message)).toBe(JSON.stringify(message));
  });
});
