import SchemaBuilder from "@pothos/core";
import ComplexityPlugin from "@pothos/plugin-complexity";
import PrismaPlugin from "@pothos/plugin-prisma";
import RelayPlugin from "@pothos/plugin-relay";
import ScopeAuthPlugin from "@pothos/plugin-scope-auth";
import type PrismaTypes from "../generated/pothos-types.js";
import { getDatamodel } from "../generated/pothos-types.js";
import { isListType, isNonNullType, type GraphQLOutputType } from "graphql";
import { environmentValue } from "../config.js";
import type { GraphQLContext } from "./context.js";
import { forbidden, unauthenticated } from "./errors.js";

/** Connections' page sizes: `first`/`last`, 20 by default, 100 at most (Pothos' defaults and `jobs`'). */
export const PAGE_DEFAULT = 20;
export const PAGE_MAX = 100;

/** The rows a page may load, for its cost: an invalid size is refused when the field runs. */
export function pageSize(args: { first?: unknown; last?: unknown }): number {
  const requested = typeof args.first === "number" ? args.first : typeof args.last === "number" ? args.last : PAGE_DEFAULT;
  return Math.min(Math.max(requested, 0), PAGE_MAX);
}

/** The one Pothos builder: plugins and their options only; types live in ./schema/. */
export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  PrismaTypes: PrismaTypes;
  AuthScopes: { authenticated: boolean; operator: boolean };
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
    JSON: { Input: unknown; Output: unknown };
    // A placeholder the multipart route put in the variables; resolvers exchange it for the stored file.
    Upload: { Input: unknown; Output: never };
  };
  // Fields are non-null unless a field says otherwise: a null must mean something.
  DefaultFieldNullability: false;
}>({
  // Relay before scope-auth, so connection fields are wrapped by the auth checks.
  plugins: [RelayPlugin, ScopeAuthPlugin, PrismaPlugin, ComplexityPlugin],
  defaultFieldNullability: false,
  relay: {
    clientMutationId: "omit",
    cursorType: "String",
    nodeQueryOptions: false,
    nodesQueryOptions: false,
    // A connection's cost is already multiplied by its page size; its edges are that page.
    edgesFieldOptions: { complexity: { field: 1, multiplier: 1 } },
  },
  // Costs only: the limit (GRAPHQL_MAX_COST) is enforced before execution, with the request's
  // variables, by useCostLimit in src/server/graphql-app.ts, not by Pothos at resolve time.
  complexity: {
    disabled: true,
    // A field costs 1; what it selects costs once per row it can load: a connection's page size,
    // or 10 for other lists unless a field says better (Job.events counts its own `first`).
    fieldComplexity: (args, _context, field) => {
      if (field.args.some((arg) => arg.name === "first") && field.args.some((arg) => arg.name === "last")) {
        return { field: 1, multiplier: pageSize(args) };
      }
      return listType(field.type) ? { field: 1, multiplier: 10 } : 1;
    },
  },
  scopeAuth: {
    // A subscription the caller may not see is refused when it starts, not after its first event.
    authorizeOnSubscribe: true,
    authScopes: (context) => ({
      authenticated: context.viewer !== null,
      operator: context.viewer?.role === "operator",
    }),
    unauthorizedError: (_parent, context) => (context.viewer ? forbidden("this field: operators only") : unauthenticated()),
  },
  prisma: {
    client: (context) => context.services.prisma,
    dmmf: getDatamodel(),
    exposeDescriptions: false,
    filterConnectionTotalCount: true,
    onUnusedQuery: environmentValue("NODE_ENV") === "production" ? null : "warn",
  },
});

function listType(type: GraphQLOutputType): boolean {
  return isListType(isNonNullType(type) ? type.ofType : type);
}
