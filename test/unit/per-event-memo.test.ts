import type { GraphQLResolveInfo } from "graphql";
import { describe, expect, it } from "vitest";
import type { Viewer } from "../../src/graphql/auth.js";
import { once, type GraphQLContext } from "../../src/graphql/context.js";
import type { Locale } from "../../src/i18n/locale.js";

const contextOf = (viewer: Viewer | null, locale: Locale): GraphQLContext => ({ services: {} as never, viewer, locale, cache: new Map(), uploads: null });
// What a subscription's execution per event looks like to a resolver: the event is the root value.
const infoFor = (event: object) => ({ operation: { operation: "subscription" }, rootValue: event }) as unknown as GraphQLResolveInfo;

describe("per-event memo", () => {
  it("item 21: subscribers with another identity, role or language never get each other's memoized values for the same event", async () => {
    // One published event object reaches every subscriber of the job.
    const event = { jobId: "job-1", status: "FAILED" };
    const callers = [
      contextOf({ id: "alice", role: "user" } as Viewer, "en"),
      contextOf({ id: "alice", role: "user" } as Viewer, "fr"),
      contextOf({ id: "olga", role: "operator" } as Viewer, "en"),
      contextOf({ id: "alice", role: "operator" } as Viewer, "en"),
      contextOf(null, "en"),
    ];
    const viewOf = (context: GraphQLContext) => `${context.viewer?.id ?? "anonymous"}/${context.viewer?.role ?? "-"}/${context.locale}`;
    const seen = await Promise.all(callers.map((context) => once(context, infoFor(event), "view", async () => viewOf(context))));
    expect(seen).toEqual(callers.map(viewOf));

    // Within one caller it is still computed once per event, and afresh for the next event.
    let computed = 0;
    const alice = contextOf({ id: "alice", role: "user" } as Viewer, "en");
    const twice = await Promise.all([1, 2].map(() => once(alice, infoFor(event), "count", async () => ++computed)));
    expect(twice).toEqual([1, 1]);
    // Another subscription of the same caller (its own context) shares it for this event too.
    expect(await once(contextOf({ id: "alice", role: "user" } as Viewer, "en"), infoFor(event), "count", async () => ++computed)).toBe(1);
    expect(await once(alice, infoFor({ ...event }), "count", async () => ++computed)).toBe(2);
  });
});
