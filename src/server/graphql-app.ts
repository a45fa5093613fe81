import { AsyncResource } from "node:async_hooks";
import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import { useCSRFPrevention } from "@graphql-yoga/plugin-csrf-prevention";
import { renderGraphiQL } from "@graphql-yoga/render-graphiql";
import { PothosValidationError } from "@pothos/core";
import { complexityFromQuery } from "@pothos/plugin-complexity";
import { getOperationAST, GraphQLError, Kind, NoSchemaIntrospectionCustomRule, visit, type DocumentNode, type ExecutionArgs, type ExecutionResult, type GraphQLFormattedError } from "graphql";
import { createYoga, maskError, type Plugin, type YogaServerInstance } from "graphql-yoga";
import { useServer } from "graphql-ws/use/ws";
import { WebSocketServer, type WebSocket } from "ws";
import type { Config } from "../config.js";
import { currentRequestId, inRequestScope, requestIdFrom, yogaLogger, type Logger } from "../logger.js";
import { negotiateLocale, isLocale, type Locale } from "../i18n/locale.js";
import { bearerToken, InvalidTokenError, type VerifiedViewer, type Viewer } from "../graphql/auth.js";
import type { GraphQLContext, Services } from "../graphql/context.js";
import { schema } from "../graphql/schema/index.js";
import { badInput } from "../graphql/errors.js";
import type { FinishedJobCache } from "./finished-job-cache.js";
import type { UploadRegistry } from "../validation-runs/upload-registry.js";
import { SerializeOnce } from "./serialize-once.js";
import { useEndStreamsAtTokenExpiry } from "./stream-expiry.js";
import { callAt } from "./timer-at.js";
import { isAsyncIterable, maskStreamError } from "../graphql/streams.js";
import { useCompiledSubscriptionEvents } from "../graphql/compiled-subscription-events.js";
import { coalesceWrites } from "./socket-writes.js";
import { SharedSubscriptions, SubscriptionRefused } from "./shared-subscriptions.js";
import { CallerCounts, LiveStreamQuota } from "./caller-limits.js";

export const GRAPHQL_PATH = "/graphql";

/** Headers a browser cannot send cross-site without a preflight; GET and non-JSON POSTs need one. */
const CSRF_HEADERS = ["x-graphql-yoga-csrf", "apollo-require-preflight"];

type SocketExtra = {
  request: IncomingMessage;
  viewer?: Viewer | null;
  locale?: Locale;
  /** Gives back the socket's place among its caller's (GRAPHQL_MAX_SOCKETS_PER_CALLER). */
  releaseSocket?: () => void;
  /** The subscriptions started on this socket that still run: its close ends them all. */
  streams?: Set<AsyncIterator<ExecutionResult>>;
};

export interface GraphQLApp {
  yoga: YogaServerInstance<Record<string, unknown>, GraphQLContext>;
  /** Sends /graphql upgrades to graphql-ws after the Origin check; other upgrades are refused. */
  attach(server: Server): void;
  /** Ends every subscription (clients get 1001) and closes the WebSocket server. */
  close(): Promise<void>;
  /** Open WebSocket connections and the subscriptions running on them, for /metrics. */
  connections(): { webSockets: number; subscriptions: number };
}

/**
 * graphql-yoga over HTTP (queries, mutations, SSE subscriptions, GraphiQL) and graphql-ws on the
 * same port and path; both go through the same envelop plugins (auth, limits, masking).
 */
export function createGraphQLApp(options: {
  config: Config;
  services: Services;
  logger: Logger;
  verifyToken: (token: string) => Promise<VerifiedViewer>;
  /** Request duration and errors by operation (src/server/metrics.ts). */
  metricsPlugin?: Plugin;
  /** Answers to `job(id)` of finished jobs, replayed without executing. */
  finishedJobCache?: FinishedJobCache;
  /** A caller was refused a WebSocket or a live subscription past its limit (for /metrics). */
  callerLimitRefused?: (limit: "sockets" | "streams") => void;
}): GraphQLApp {
  const { config, services, logger, verifyToken } = options;
  const limits = config.graphql;
  const refused = options.callerLimitRefused ?? (() => {});
  const liveStreams = new LiveStreamQuota(limits.maxStreamsPerCaller, () => refused("streams"));
  const socketsByCaller = new CallerCounts(limits.maxSocketsPerCaller);

  const yoga = createYoga<Record<string, unknown>, GraphQLContext>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    landingPage: false,
    // Its multipart parsing holds each file in memory: uploads go through src/server/multipart-upload.ts.
    multipart: false,
    // http-server.ts answers 411 to a POST without a Content-Length and 413 to one over
    // GRAPHQL_MAX_BODY_BYTES before yoga sees it, and Node's parser reads no byte of a body past the
    // declared length (and refuses a request that also declares chunked encoding). yoga's own limit
    // (its default, 25 MB, far above ours) piped every body through a byte-counting web
    // TransformStream, which took the body off its fast path: without it, `job(id)` of a running
    // job went from 1,761 to 3,104 requests/s and `jobs(first: 20)` from 643 to 941 (concurrency
    // 10, medians of 5 runs, on a slow 2-core VM).
    maxRequestBodySize: false,
    // Never send stacks or internal messages, whatever NODE_ENV says. Pothos rejects bad connection
    // arguments (a negative `first`, a garbled cursor) with errors that carry no code: they are the
    // caller's mistake, so they get BAD_USER_INPUT (on the error itself: yoga logs every error its
    // masking replaces, and a client's mistake is no server error).
    maskedErrors: {
      isDev: false,
      maskError: (error, message, isDev) => {
        if (error instanceof GraphQLError && error.originalError instanceof PothosValidationError && !error.extensions.code) {
          error.extensions.code = "BAD_USER_INPUT";
          return error;
        }
        return withoutOriginalError(maskError(error, message, isDev));
      },
    },
    graphiql: limits.graphiql ? { title: "Conveyor", subscriptionsProtocol: "WS" } : false,
    // GraphiQL's scripts and styles inlined from the package, so it works where no CDN is reachable.
    renderGraphiQL,
    // yoga logs the errors it masks, messages and all: they go through the redacting serializer.
    logging: yogaLogger(logger),
    plugins: [
      ...(options.metricsPlugin ? [options.metricsPlugin] : []),
      // After CSRF prevention (an onRequest hook) and before parsing: a hit skips everything else.
      ...(options.finishedJobCache ? [options.finishedJobCache.plugin()] : []),
      EnvelopArmorPlugin({
        // Every document is held to the limits, introspection included. Fragments add no depth of
        // their own (the response has none), which keeps GraphiQL's introspection query within them.
        maxDepth: { n: limits.maxDepth, ignoreIntrospection: false, flattenFragments: true },
        // Armor's cost ignores list sizes; useCostLimit replaces it.
        costLimit: { enabled: false },
        maxAliases: { n: limits.maxAliases },
        maxTokens: { n: limits.maxTokens },
        maxDirectives: { n: limits.maxDirectives },
        blockFieldSuggestion: { enabled: limits.hideSuggestions },
      }),
      useLimitErrorCodes(),
      useCostLimit(limits.maxCost),
      useVariableErrorCodes(),
      ...(limits.hideSuggestions ? [useHideSuggestions()] : []),
      useRejectUnstorableText(),
      useEndStreamsAtTokenExpiry(),
      useCompiledSubscriptionEvents(),
      liveStreams.plugin(),
      useCSRFPreventionWithCode(),
      ...(limits.introspection ? [] : [useNoIntrospection()]),
    ],
    context: async (initial): Promise<GraphQLContext> => {
      const extra = (initial as { extra?: SocketExtra }).extra;
      if (extra) {
        const requested = (initial as { connectionParams?: Record<string, unknown> }).connectionParams?.locale;
        const locale = typeof requested === "string" && isLocale(requested) ? requested : (extra.locale ?? "en");
        return { services, viewer: extra.viewer ?? null, locale, cache: new Map(), uploads: null };
      }
      const request = (initial as { request: Request }).request;
      // Only the multipart route (src/server/multipart-upload.ts) passes uploads, as server context.
      const uploads = (initial as { uploads?: UploadRegistry }).uploads ?? null;
      const locale = negotiateLocale(request.headers.get("accept-language"));
      const token = bearerToken(request.headers.get("authorization"));
      if (!token) return { services, viewer: null, locale, cache: new Map(), uploads };
      try {
        return { services, viewer: await verifyToken(token), locale, cache: new Map(), uploads };
      } catch (error) {
        if (error instanceof InvalidTokenError) {
          throw new GraphQLError(error.message, { extensions: { code: "UNAUTHENTICATED", http: { status: 401 } } });
        }
        throw error;
      }
    },
  });

  const webSocketServer = new WebSocketServer({ noServer: true, maxPayload: limits.maxBodyBytes });
  // The upgrade's request id, echoed as on HTTP responses: "headers" fires within its scope.
  webSocketServer.on("headers", (headers: string[]) => {
    const requestId = currentRequestId();
    if (requestId) headers.push(`X-Request-Id: ${requestId}`);
  });
  // graphql-ws's connection contexts, counted at scrape time rather than on every subscribe.
  const connections = new Set<{ subscriptions: Record<string, unknown> }>();
  const shared = new SharedSubscriptions();
  // The socket each operation's context came from: graphql-ws hands `subscribe` the arguments alone.
  const socketOf = new WeakMap<object, SocketExtra>();
  const serializeOnce = new SerializeOnce(formatForClient);
  const subscriptions = useServer<Record<string, unknown> | undefined, SocketExtra>(
    {
      connectionInitWaitTimeout: 3000,
      jsonMessageReplacer: serializeOnce.replacer,
      onClose: (context) => {
        connections.delete(context);
        context.extra.releaseSocket?.();
        // graphql-ws ends the subscriptions it knows of; one whose id the client reused while it
        // was starting is not among them, and would run (and keep its place) until its job ends.
        for (const stream of context.extra.streams ?? []) void Promise.resolve(stream.return?.()).catch(() => undefined);
      },
      onConnect: async (context) => {
        connections.add(context);
        const params = context.connectionParams ?? {};
        const raw = params.authorization ?? params.Authorization ?? params.token;
        const token = typeof raw === "string" ? (bearerToken(raw) ?? raw) : null;
        context.extra.locale = negotiateLocale(context.extra.request.headers["accept-language"]);
        let expiresAt: number | null = null;
        if (!token) context.extra.viewer = null;
        else {
          try {
            const { expiresAt: expiry, ...viewer } = await verifyToken(token);
            context.extra.viewer = viewer;
            expiresAt = expiry;
          } catch {
            // graphql-ws closes the socket with 4403 Forbidden.
            return false;
          }
        }
        const { socket, request } = context.extra;
        // Closed while its token was verified: onClose has run, and would never give a place back.
        if (socket.readyState !== socket.OPEN) return false;
        // Every open socket costs memory and a timer whether or not it subscribes. Anonymous ones
        // (they may ask who they are, or learn that a token is needed) count per address.
        const viewer = context.extra.viewer;
        const release = socketsByCaller.take(viewer ? `caller:${viewer.id}` : `anonymous:${request.socket.remoteAddress ?? ""}`);
        if (!release) {
          refused("sockets");
          // Forbidden, as graphql-ws says it, with the reason: its clients retry this one later.
          socket.close(4403, `Too many connections: at most ${limits.maxSocketsPerCaller} per caller`);
          return false;
        }
        context.extra.releaseSocket = release;
        if (expiresAt !== null) closeAtExpiry(socket, expiresAt);
        return true;
      },
      onSubscribe: async (context, _id, payload) => {
        // This one is counted already (graphql-ws enters it before asking).
        // Each live subscription holds a listener, a bounded backlog and an execution per event;
        // thousands on one socket (distinct documents defeat the sharing of identical ones) would
        // cost the server for everyone.
        if (Object.keys(context.subscriptions).length > limits.maxSubscriptionsPerSocket) {
          return [
            new GraphQLError(`At most ${limits.maxSubscriptionsPerSocket} subscriptions per connection: complete one first`, { extensions: { code: "TOO_MANY_SUBSCRIPTIONS" } }),
          ];
        }
        const { schema: envelopedSchema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...context,
          req: context.extra.request,
          socket: context.extra.request.socket,
          params: payload,
        });
        let document;
        try {
          document = parse(payload.query);
        } catch (error) {
          return [error instanceof GraphQLError ? error : new GraphQLError("Syntax error", { extensions: { code: "GRAPHQL_PARSE_FAILED" } })];
        }
        // Armor's limits (depth, cost, aliases, directives) throw from validation rather than
        // return: uncaught here, graphql-ws would close the whole socket with 4500.
        let errors: readonly GraphQLError[];
        try {
          errors = validate(envelopedSchema, document);
        } catch (error) {
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
        if (errors.length > 0) return [...errors];
        const contextValue = await contextFactory();
        socketOf.set(contextValue, context.extra);
        const args: ExecutionArgs = {
          schema: envelopedSchema,
          operationName: payload.operationName,
          document,
          variableValues: payload.variables,
          contextValue,
          rootValue: { execute, subscribe },
        };
        return args;
      },
      execute: (args) => (args.rootValue as { execute: (a: ExecutionArgs) => unknown }).execute(args) as never,
      subscribe: async (args) => {
        const extra = socketOf.get(args.contextValue as object);
        const outcome = await liveStreams.admit(
          args.contextValue as GraphQLContext,
          () => shared.subscribe(args, () => (args.rootValue as { subscribe: (a: ExecutionArgs) => unknown }).subscribe(args) as never),
          extra ? (extra.streams ??= new Set()) : undefined,
        );
        // A subscription that never started (forbidden, not found, invalid arguments) is refused
        // with an `error` message, the protocol's answer to a failed Subscribe, rather than a
        // `next` whose payload is only errors: clients see it in their error callback.
        return (isAsyncIterable(outcome) || !outcome.errors?.length ? outcome : refusedStream(outcome)) as never;
      },
      // A refusal carries every error of the result it replaces, with their paths and codes. Like
      // yoga over HTTP, the extensions meant for the server (http, unexpected) stay on it. A stream
      // that failed with anything but an API error (graphql-ws sends its message as it is) ends with
      // a masked one, and the error goes to the log.
      onError: (_context, _id, _payload, errors) => {
        const refusal = errors[0]?.originalError;
        if (refusal instanceof SubscriptionRefused) return refusal.errors.map(formatForClient);
        return errors.map((error) => formatForClient(error.originalError && !error.extensions.code ? (maskStreamError(error, logger) as GraphQLError) : error));
      },
      // One payload object per result, whichever socket it goes to, so that its text is made once.
      onNext: (_context, _id, _payload, _args, result) => serializeOnce.payloadOf(result),
    },
    webSocketServer,
  );

  return {
    yoga,
    attach(server) {
      server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
        const path = (request.url ?? "").split("?")[0];
        if (path !== GRAPHQL_PATH || !originAllowed(request, limits.allowedOrigins)) {
          socket.end("HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n");
          return;
        }
        // A WebSocket is one request for logging: its id on every line of every operation on it.
        inRequestScope(requestIdFrom(request.headers["x-request-id"]), socket, () =>
          webSocketServer.handleUpgrade(request, socket, head, (webSocket) => {
            coalesceWrites(webSocket, socket);
            serializeOnce.attach(webSocket);
            // Its messages arrive through the TCP socket, accepted before the scope existed: its
            // events run in the scope of the upgrade instead.
            webSocket.emit = AsyncResource.bind(webSocket.emit, "conveyor.websocket", webSocket);
            webSocketServer.emit("connection", webSocket, request);
          }),
        );
      });
    },
    connections() {
      let subscriptionCount = 0;
      for (const context of connections) for (const _ in context.subscriptions) subscriptionCount++;
      return { webSockets: webSocketServer.clients.size, subscriptions: subscriptionCount };
    },
    async close() {
      await subscriptions.dispose();
      await new Promise<void>((resolve) => webSocketServer.close(() => resolve()));
    },
  };
}

/**
 * A token is checked once, at connection_init; without this a socket would outlive its token for
 * as long as the client keeps it open.
 */
function closeAtExpiry(socket: WebSocket, expiresAt: number): void {
  if (socket.readyState === socket.CLOSED) return;
  socket.once("close", callAt(expiresAt * 1000, () => socket.close(4401, "Token expired")));
}

/**
 * yoga describes a body that is not JSON with the parser's own error in `extensions.originalError`
 * (its name and message, which quote the body); clients get the message and code alone. Changed in
 * place: yoga logs every error its masking replaces, and a client's mistake is no server error.
 */
function withoutOriginalError<E extends Error>(error: E): E {
  if (error instanceof GraphQLError && error.extensions.originalError !== undefined) delete error.extensions.originalError;
  return error;
}

/**
 * yoga's CSRF prevention, whose refusal (403) carries no code of its own: it gets the one the
 * multipart route's refusal has (src/server/multipart-upload.ts), and a message naming the headers.
 */
function useCSRFPreventionWithCode(): Plugin {
  const { onRequestParse } = useCSRFPrevention({ requestHeaders: CSRF_HEADERS });
  return {
    onRequestParse(payload) {
      // The check is synchronous: it throws, or lets the request through.
      try {
        return onRequestParse!(payload);
      } catch (error) {
        if (!(error instanceof GraphQLError)) throw error;
        throw new GraphQLError(`Required CSRF header not present: send an ${CSRF_HEADERS[0]} (or ${CSRF_HEADERS[1]}) header`, {
          extensions: { ...error.extensions, code: "CSRF_HEADER_REQUIRED" },
        });
      }
    },
  };
}

/**
 * Refuses introspection in every document, over HTTP, SSE and WebSocket alike. yoga's
 * useDisableIntrospection decides per HTTP request, in onRequestParse, which graphql-ws never goes
 * through: over WebSocket it refused nothing. GRAPHQL_INTROSPECTION is the same for every request.
 */
function useNoIntrospection(): Plugin {
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(NoSchemaIntrospectionCustomRule);
    },
  };
}

function formatForClient(error: GraphQLError): GraphQLFormattedError {
  const formatted = error.toJSON();
  if (!formatted.extensions) return formatted;
  const { http: _http, unexpected: _unexpected, ...extensions } = formatted.extensions;
  return { ...formatted, extensions };
}

/** A stream that fails at once, so graphql-ws answers the Subscribe with an `error` message. */
async function* refusedStream(result: ExecutionResult): AsyncGenerator<never> {
  throw new SubscriptionRefused(result.errors ?? []);
}

/**
 * Browsers send cookies with WebSocket upgrades and apply no CORS to them, so an Origin must be
 * this server itself or on the allow-list. Clients that are not browsers send no Origin.
 */
export function originAllowed(request: IncomingMessage, allowedOrigins: string[]): boolean {
  const origin = request.headers.origin;
  if (!origin) return true;
  if (allowedOrigins.includes("*") || allowedOrigins.includes(origin)) return true;
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}

const LIMIT_MESSAGE = /limit of \d+ exceeded|Token limit|too many/i;

/**
 * Gives GraphQL Armor's rejections (depth, cost, aliases, directives, tokens) a stable code that
 * clients can branch on; Armor reports them as bare "Syntax Error: … limit … exceeded" errors,
 * some returned by validation and some thrown from it or from the parser.
 */
function useLimitErrorCodes(): Plugin {
  const mark = (error: unknown) =>
    error instanceof GraphQLError && !error.extensions?.code && LIMIT_MESSAGE.test(error.message)
      ? new GraphQLError(error.message, { nodes: error.nodes, extensions: { ...error.extensions, code: "QUERY_TOO_COMPLEX" } })
      : error;
  return {
    onParse({ parseFn, setParseFn }) {
      setParseFn((...args: Parameters<typeof parseFn>) => {
        try {
          return parseFn(...args);
        } catch (error) {
          throw mark(error);
        }
      });
    },
    onValidate({ validateFn, setValidationFn }) {
      setValidationFn((...args: Parameters<typeof validateFn>) => {
        try {
          return validateFn(...args).map((error: GraphQLError) => mark(error) as GraphQLError);
        } catch (error) {
          throw mark(error);
        }
      });
    },
  };
}

/**
 * GRAPHQL_MAX_COST, with each field's cost from the schema (src/graphql/builder.ts): a field costs
 * 1 and its selection counts once per row it can load (a page's `first`/`last`, `events(first:)`).
 * Sizes come from variables too, so this runs once they are known, before anything executes;
 * validation results are cached per document and cannot depend on them.
 */
function useCostLimit(maxCost: number): Plugin {
  const check = (args: ExecutionArgs, stop: (result: ExecutionResult) => void) => {
    const operation = getOperationAST(args.document, args.operationName);
    if (!operation) return;
    const document: DocumentNode = {
      ...args.document,
      definitions: args.document.definitions.filter((definition) => definition === operation || definition.kind === Kind.FRAGMENT_DEFINITION),
    };
    let cost: number;
    try {
      cost = complexityFromQuery(document, { schema: args.schema, variables: args.variableValues ?? {}, ctx: args.contextValue as object }).complexity;
    } catch {
      // Variables that do not fit their types: execution refuses them with its own errors.
      return;
    }
    if (cost > maxCost) {
      stop({
        errors: [
          new GraphQLError(`Query cost limit of ${maxCost} exceeded, found ${cost}.`, {
            extensions: { code: "QUERY_TOO_COMPLEX", cost: { actual: cost, max: maxCost } },
          }),
        ],
      });
    }
  };
  return {
    onExecute: ({ args, setResultAndStopExecution }) => check(args, setResultAndStopExecution),
    onSubscribe: ({ args, setResultAndStopExecution }) => check(args, setResultAndStopExecution),
  };
}

/**
 * Variables that do not fit their declared types (a missing required one, an unknown enum value) stop
 * the operation before it runs, with errors that carry no code; they are the caller's mistake.
 */
function useVariableErrorCodes(): Plugin {
  const mark = (result: ExecutionResult, setResult: (result: ExecutionResult) => void) => {
    if (result.data !== undefined || !result.errors?.some((error) => !error.extensions?.code && /^Variable "\$/.test(error.message))) return;
    setResult({
      ...result,
      errors: result.errors.map((error) =>
        !error.extensions?.code && /^Variable "\$/.test(error.message)
          ? new GraphQLError(error.message, { nodes: error.nodes, originalError: error.originalError, extensions: { ...error.extensions, code: "BAD_USER_INPUT" } })
          : error,
      ),
    });
  };
  return {
    onExecute: () => ({
      onExecuteDone: ({ result, setResult }) => {
        if (!isAsyncIterable(result)) mark(result as ExecutionResult, setResult);
      },
    }),
    onSubscribe: () => ({
      onSubscribeResult: ({ result, setResult }) => {
        if (!isAsyncIterable(result)) mark(result as ExecutionResult, setResult);
      },
    }),
  };
}

const SUGGESTION = /\s*Did you mean [^?]*\?/g;

/**
 * Suggestions ("Did you mean …?") reveal the schema. Armor's rule hides those for fields in
 * validation only; enum values and variables get them too, in validation and in execution.
 */
function useHideSuggestions(): Plugin {
  const hide = (error: GraphQLError) =>
    error.message.includes("Did you mean")
      ? new GraphQLError(error.message.replace(SUGGESTION, "").trim(), { nodes: error.nodes, path: error.path, originalError: error.originalError, extensions: error.extensions })
      : error;
  const hideInResult = (result: ExecutionResult, setResult: (result: ExecutionResult) => void) => {
    if (result.errors?.some((error) => error.message.includes("Did you mean"))) setResult({ ...result, errors: result.errors.map(hide) });
  };
  return {
    onValidate: () => ({ result, setResult }) => {
      if (result.some((error) => error.message.includes("Did you mean"))) setResult(result.map((error) => (error instanceof GraphQLError ? hide(error) : error)));
    },
    onExecute: () => ({
      onExecuteDone: ({ result, setResult }) => {
        if (!isAsyncIterable(result)) hideInResult(result as ExecutionResult, setResult);
      },
    }),
    onSubscribe: () => ({
      onSubscribeResult: ({ result, setResult }) => {
        if (!isAsyncIterable(result)) hideInResult(result as ExecutionResult, setResult);
      },
    }),
  };
}

/**
 * PostgreSQL cannot store U+0000 in text or jsonb, nor an unpaired UTF-16 surrogate in jsonb (and
 * text would store it as U+FFFD, so that two idempotency keys differing only there would be one), so
 * such input would fail deep in a query as an unexpected error or be silently altered; it is refused
 * up front, as the caller's mistake, wherever it appears (variables, JSON keys included, and string
 * literals in the document).
 */
function useRejectUnstorableText(): Plugin {
  const refuse = (args: ExecutionArgs, stop: (result: ExecutionResult) => void) => {
    if (containsUnstorableText(args.variableValues) || documentContainsUnstorableText(args.document)) {
      stop({ errors: [badInput("Text must not contain the NUL character (U+0000) or an unpaired UTF-16 surrogate")] });
    }
  };
  return {
    onExecute: ({ args, setResultAndStopExecution }) => refuse(args, setResultAndStopExecution),
    onSubscribe: ({ args, setResultAndStopExecution }) => refuse(args, setResultAndStopExecution),
  };
}

function unstorable(text: string): boolean {
  return text.includes("\u0000") || !text.isWellFormed();
}

function containsUnstorableText(value: unknown): boolean {
  if (typeof value === "string") return unstorable(value);
  if (Array.isArray(value)) return value.some(containsUnstorableText);
  if (value !== null && typeof value === "object") return Object.entries(value).some(([key, inner]) => unstorable(key) || containsUnstorableText(inner));
  return false;
}

// Parsed documents are cached and reused by yoga, so each is searched once.
const unstorableTextInDocument = new WeakMap<DocumentNode, boolean>();

function documentContainsUnstorableText(document: DocumentNode): boolean {
  const known = unstorableTextInDocument.get(document);
  if (known !== undefined) return known;
  const found = searchDocumentForUnstorableText(document);
  unstorableTextInDocument.set(document, found);
  return found;
}

function searchDocumentForUnstorableText(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    [Kind.STRING]: (node) => {
      if (unstorable(node.value)) found = true;
    },
  });
  return found;
}
