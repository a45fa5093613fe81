import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type pg from "pg";
import { pendingMigrations, readMigrations, type Migration } from "../db/migrate.js";
import { inRequestScope, requestIdFrom } from "../logger.js";

export type RequestListener = (request: IncomingMessage, response: ServerResponse) => void;

/**
 * The HTTP server: /health (the process lives) and /ready (the database answers and every
 * migration is applied); everything else goes to `next` (the GraphQL app).
 */
export function createHttpServer(options: {
  pool: pg.Pool;
  maxBodyBytes: number;
  next?: RequestListener;
  /**
   * Takes the requests it handles before the body limit applies (multipart uploads, which have
   * their own); returns false for the others.
   */
  upload?: (request: IncomingMessage, response: ServerResponse, path: string) => boolean;
  /** GET /metrics (src/server/metrics.ts). */
  metrics?: RequestListener;
  /** True once shutdown began: /ready then answers 503 so load balancers stop sending work here. */
  stopping?: () => boolean;
}): Server {
  // The migrations this build ships, read once; /ready compares the database against them.
  const migrations = readMigrations();
  return createServer((request, response) => {
    // Every log line this request leads to carries its id; the client gets it back to quote.
    const requestId = requestIdFrom(request.headers["x-request-id"]);
    response.setHeader("x-request-id", requestId);
    inRequestScope(requestId, response, () => handle(request, response));
  });

  function handle(request: IncomingMessage, response: ServerResponse): void {
    const path = (request.url ?? "/").split("?")[0];
    if (path === "/health") return sendJson(response, 200, { status: "ok" });
    if (path === "/metrics" && options.metrics) return options.metrics(request, response);
    if (options.upload?.(request, response, path ?? "/")) return;
    if (request.method === "POST") {
      const length = Number(request.headers["content-length"] ?? Number.NaN);
      // Without a declared length the size cannot be checked before the body is parsed.
      if (!Number.isFinite(length)) return sendJson(response, 411, { error: { code: "LENGTH_REQUIRED", message: "Send a Content-Length header" } });
      if (length > options.maxBodyBytes) {
        return sendJson(response, 413, { error: { code: "PAYLOAD_TOO_LARGE", message: `Request bodies are limited to ${options.maxBodyBytes} bytes` } });
      }
    }
    if (path === "/ready") {
      if (options.stopping?.()) return sendJson(response, 503, { status: "not ready", reason: "stopping" });
      void readiness(options.pool, migrations).then(({ ready, ...body }) => sendJson(response, ready ? 200 : 503, { status: ready ? "ready" : "not ready", ...body }));
      return;
    }
    if (options.next) return options.next(request, response);
    sendJson(response, 404, { error: "not found" });
  }
}

async function readiness(pool: pg.Pool, migrations: Migration[]): Promise<{ ready: boolean; database: string; pendingMigrations?: string[] }> {
  try {
    const pending = await pendingMigrations(pool, migrations);
    return pending.length === 0 ? { ready: true, database: "ok" } : { ready: false, database: "ok", pendingMigrations: pending };
  } catch {
    return { ready: false, database: "unreachable" };
  }
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  response.end(JSON.stringify(body));
}

export function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
