import type { Viewer } from "./auth.js";
import type { GraphQLContext } from "./context.js";
import { badInput, forbidden, notFound, unauthenticated } from "./errors.js";
import { UUID } from "../events/messages.js";

export function requireViewer(context: GraphQLContext): Viewer {
  if (!context.viewer) throw unauthenticated();
  return context.viewer;
}

export function requireUuid(value: string, argument = "id"): string {
  if (!UUID.test(value)) throw badInput(`${argument} must be a UUID`, [{ field: argument, message: "expected a UUID" }]);
  return value.toLowerCase();
}

/**
 * Connection cursors are base64 of `GPC:S:<uuid>`; anything else would reach the database as a
 * malformed id and fail there as an unexpected error, so it is refused as bad input. Returns the
 * ids the cursors name.
 */
export function requireIdCursors(args: { after?: string | null; before?: string | null }): { name: "after" | "before"; id: string }[] {
  const cursors: { name: "after" | "before"; id: string }[] = [];
  for (const name of ["after", "before"] as const) {
    const cursor = args[name];
    if (cursor === null || cursor === undefined) continue;
    const match = /^GPC:S:(.*)$/s.exec(Buffer.from(cursor, "base64").toString("utf8"));
    if (!match || !UUID.test(match[1]!)) throw invalidCursor(name);
    cursors.push({ name, id: match[1]!.toLowerCase() });
  }
  return cursors;
}

/**
 * A cursor names a row, and the page starts where that row sits, whoever owns it: a cursor naming
 * another user's row would page the caller's own rows from its place, telling that it exists and
 * when it was made. So each cursor must name a row the connection could list for the caller
 * (`listable`); any other is refused like a malformed one, whether it exists or not.
 */
export async function requireListableCursors(args: { after?: string | null; before?: string | null }, listable: (id: string) => Promise<boolean>): Promise<void> {
  for (const { name, id } of requireIdCursors(args)) if (!(await listable(id))) throw invalidCursor(name);
}

function invalidCursor(name: string) {
  return badInput(`${name} is not a valid cursor`, [{ field: name, message: "expected a cursor from this connection" }]);
}

/**
 * Users reach only what they own; operators reach everything. Somebody else's job is FORBIDDEN
 * rather than NOT_FOUND: ids cannot be guessed (job ids are UUIDv7, a millisecond and at least 42
 * random bits; the others random UUIDs), so confirming that one exists leaks nothing an attacker
 * could use, and telling "not yours" apart from "deleted" saves users and support time.
 */
export function ensureCanAccess(viewer: Viewer, owner: string, what: string): void {
  if (viewer.role !== "operator" && viewer.id !== owner) throw forbidden(what);
}

/** Loads with `load`, then applies ensureCanAccess; NOT_FOUND when there is nothing. */
export async function loadAccessible<T extends { owner: string }>(
  context: GraphQLContext,
  id: string,
  what: string,
  load: (id: string) => Promise<T | null>,
): Promise<T> {
  const viewer = requireViewer(context);
  const entity = await load(requireUuid(id));
  if (!entity) throw notFound(what);
  ensureCanAccess(viewer, entity.owner, `this ${what.toLowerCase()}`);
  return entity;
}
