import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import { useCSRFPrevention } from "@graphql-yoga/plugin-csrf-prevention";
import { useDisableIntrospection } from "@graphql-yoga/plugin-disable-introspection";
import { renderGraphiQL } from "@graphql-yoga/render-graphiql";
import { GraphQLError, type ExecutionArgs } from "graphql";
import { createYoga, type Plugin, type YogaServerInstance } from "graphql-yoga";
import { useServer } from "graphql-ws/use/ws";
import { WebSocketServer, type WebSocket } from "ws";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import { negotiateLocale, isLocale, type Locale } from "../i18n/locale.js";
import { bearerToken, InvalidTokenError, type Viewer } from "../graphql/auth.js";
import type { GraphQLContext, Services } from "../graphql/context.js";
import { schema } from "../graphql/schema/index.js";
import { SharedSubscriptions } from "./shared-subscriptions.js";

export const GRAPHQL_PATH = "/graphql";

type SocketExtra = {
  request: IncomingMessage;
  viewer?: Viewer | null;
  locale?: Locale;
};

export interface GraphQLApp {
  yoga: YogaServerInstance<Record<string, unknown>, GraphQLContext>;
  /** Sends /graphql upgrades to graphql-ws after the Origin check; other upgrades are refused. */
  attach(server: Server): void;
  /** Ends every subscription (clients get 1001) and closes the WebSocket server. */
  close(): Promise<void>;
}

/**
 * graphql-yoga over HTTP (queries, mutations, SSE subscriptions, GraphiQL) and graphql-ws on the
 * same port and path; both go through the same envelop plugins (auth, limits, masking).
 */
export function createGraphQLApp(options: {
  config: Config;
  services: Services;
  logger: Logger;
  verifyToken: (token: string) => Promise<Viewer>;
}): GraphQLApp {
  const { config, services, logger, verifyToken } = options;
  const limits = config.graphql;

  const yoga = createYoga<Record<string, unknown>, GraphQLContext>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    landingPage: false,
    // Never send stacks or internal messages, whatever NODE_ENV says.
    maskedErrors: { isDev: false },
    graphiql: limits.graphiql ? { title: "Conveyor", subscriptionsProtocol: "WS" } : false,
    // GraphiQL's scripts and styles inlined from the package, so it works where no CDN is reachable.
    renderGraphiQL,
    logging: {
      debug: (...args) => logger.debug({ yoga: args }, "graphql"),
      info: (...args) => logger.info({ yoga: args }, "graphql"),
      warn: (...args) => logger.warn({ yoga: args }, "graphql"),
      error: (...args) => logger.error({ yoga: args }, "graphql"),
    },
    plugins: [
      EnvelopArmorPlugin({
        maxDepth: { n: limits.maxDepth, ignoreIntrospection: true },
        costLimit: { maxCost: limits.maxCost },
        maxAliases: { n: limits.maxAliases },
        maxTokens: { n: limits.maxTokens },
        maxDirectives: { n: limits.maxDirectives },
        blockFieldSuggestion: { enabled: limits.hideSuggestions },
      }),
      useLimitErrorCodes(),
      useCSRFPrevention({ requestHeaders: ["x-graphql-yoga-csrf", "apollo-require-preflight"] }),
      ...(limits.introspection ? [] : [useDisableIntrospection()]),
    ],
    context: async (initial): Promise<GraphQLContext> => {
      const extra = (initial as { extra?: SocketExtra }).extra;
      if (extra) {
        const requested = (initial as { connectionParams?: Record<string, unknown> }).connectionParams?.locale;
        const locale = typeof requested === "string" && isLocale(requested) ? requested : (extra.locale ?? "en");
        return { services, viewer: extra.viewer ?? null, locale, cache: new Map() };
      }
      const request = (initial as { request: Request }).request;
      const locale = negotiateLocale(request.headers.get("accept-language"));
      const token = bearerToken(request.headers.get("authorization"));
      if (!token) return { services, viewer: null, locale, cache: new Map() };
      try {
        return { services, viewer: await verifyToken(token), locale, cache: new Map() };
      } catch (error) {
        if (error instanceof InvalidTokenError) {
          throw new GraphQLError(error.message, { extensions: { code: "UNAUTHENTICATED", http: { status: 401 } } });
        }
        throw error;
      }
    },
  });

  const webSocketServer = new WebSocketServer({ noServer: true, maxPayload: limits.maxBodyBytes });
  const shared = new SharedSubscriptions();
  const subscriptions = useServer<Record<string, unknown> | undefined, SocketExtra>(
    {
      connectionInitWaitTimeout: 3000,
      onConnect: async (context) => {
        const params = context.connectionParams ?? {};
        const raw = params.authorization ?? params.Authorization ?? params.token;
        const token = typeof raw === "string" ? (bearerToken(raw) ?? raw) : null;
        context.extra.locale = negotiateLocale(context.extra.request.headers["accept-language"]);
        if (!token) {
          context.extra.viewer = null;
          return true;
        }
        try {
          context.extra.viewer = await verifyToken(token);
          return true;
        } catch {
          // graphql-ws closes the socket with 4403 Forbidden.
          return false;
        }
      },
      onSubscribe: async (context, _id, payload) => {
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
        const errors = validate(envelopedSchema, document);
        if (errors.length > 0) return errors;
        const args: ExecutionArgs = {
          schema: envelopedSchema,
          operationName: payload.operationName,
          document,
          variableValues: payload.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
        return args;
      },
      execute: (args) => (args.rootValue as { execute: (a: ExecutionArgs) => unknown }).execute(args) as never,
      subscribe: (args) =>
        shared.subscribe(args, () => (args.rootValue as { subscribe: (a: ExecutionArgs) => unknown }).subscribe(args) as never) as never,
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
        webSocketServer.handleUpgrade(request, socket, head, (webSocket) => {
          coalesceWrites(webSocket, socket);
          webSocketServer.emit("connection", webSocket, request);
        });
      });
    },
    async close() {
      await subscriptions.dispose();
      await new Promise<void>((resolve) => webSocketServer.close(() => resolve()));
    },
  };
}

/**
 * One progress event goes to every subscription on a socket at once; holding the socket's writes
 * until the end of the tick sends them in one system call instead of one each.
 */
function coalesceWrites(webSocket: WebSocket, socket: Duplex): void {
  let corked = false;
  const send = webSocket.send.bind(webSocket);
  webSocket.send = ((...args: Parameters<WebSocket["send"]>) => {
    if (!corked) {
      corked = true;
      socket.cork();
      setImmediate(() => {
        corked = false;
        socket.uncork();
      });
    }
    return send(...args);
  }) as WebSocket["send"];
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
