import { createReadStream, statSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { DEVELOPMENT_JWT_SECRET, isLoopback, type Config } from "../config.js";
import { signToken } from "../graphql/auth.js";

export const DASHBOARD_PATH = "/dashboard";
const DEV_TOKEN_PATH = `${DASHBOARD_PATH}/dev-token`;

/**
 * Where `npm run build:dashboard` (scripts/build-dashboard.mjs) writes the dashboard: dist/dashboard
 * at the package root, the same folder from src/server (tsx) and from dist/server (compiled).
 */
export const DASHBOARD_BUILD_DIRECTORY = fileURLToPath(new URL("../../dist/dashboard/", import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".woff2": "font/woff2",
};

// Everything the dashboard loads comes from this server: its bundle, and the API over HTTP and WebSocket.
const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/**
 * The operator dashboard at /dashboard: the static files Vite built (hashed assets cached for good,
 * index.html revalidated on every load so a deployment shows at once), index.html for every other
 * path under /dashboard (the dashboard routes in the browser), and, outside production on a
 * loopback HOST with the development secret, POST /dashboard/dev-token, which mints a development
 * operator token for requests made on this machine. Returns false for paths outside /dashboard.
 */
export function createDashboardHandler(options: { config: Config; directory?: string }) {
  const directory = options.directory ?? DASHBOARD_BUILD_DIRECTORY;
  const { config } = options;
  const devTokens = devTokensAllowed(config);

  return function handleDashboard(request: IncomingMessage, response: ServerResponse): boolean {
    const path = (request.url ?? "/").split("?")[0] ?? "/";
    if (path !== DASHBOARD_PATH && !path.startsWith(`${DASHBOARD_PATH}/`)) return false;
    if (path === DEV_TOKEN_PATH) {
      void serveDevToken(request, response, config, devTokens);
      return true;
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      sendText(response, 405, "Use GET", { allow: "GET, HEAD" });
      return true;
    }
    if (path === DASHBOARD_PATH) {
      response.writeHead(308, { location: `${DASHBOARD_PATH}/` });
      response.end();
      return true;
    }
    serveFile(request, response, directory, path.slice(DASHBOARD_PATH.length + 1));
    return true;
  };
}

/**
 * The development secret and the development mode both stay on the developer's machine: a token
 * minted for whoever asks must never be handed out by a server others can reach. Only the published
 * development secret (JWT_SECRET unset): a token signed with a real one would be an operator's on
 * every instance that trusts it, and operators mint those with `npm run token`.
 */
export function devTokensAllowed(config: Config): boolean {
  return config.environment !== "production" && config.auth.secret === DEVELOPMENT_JWT_SECRET && isLoopback(config.http.host);
}

// What a reverse proxy adds: its own connection comes from loopback, whoever its client is.
const PROXY_HEADERS = ["forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip"];

/**
 * Why this request gets no development token, or null when it may have one: it must come straight
 * from this machine. A loopback HOST is not enough, since a proxy on this machine can relay others'
 * requests to it (nginx's proxy_pass even rewrites Host to the loopback address it forwards to).
 */
function devTokenRefusal(request: IncomingMessage): string | null {
  if (!isLoopback(request.socket.remoteAddress ?? "")) return "Development tokens are only minted for requests from this machine";
  if (PROXY_HEADERS.some((name) => request.headers[name] !== undefined)) {
    return "Development tokens are not minted for requests relayed by a proxy (Forwarded, X-Forwarded-For, X-Forwarded-Host or X-Real-IP)";
  }
  // DNS rebinding: a site whose name its owner points at 127.0.0.1 is, to the browser, the same
  // origin as this server. Only requests addressed to a loopback name are answered.
  const host = (request.headers.host ?? "").replace(/:\d+$/, "");
  if (!isLoopback(host)) return "Development tokens are only minted for requests addressed to a loopback name";
  return null;
}

async function serveDevToken(request: IncomingMessage, response: ServerResponse, config: Config, allowed: boolean): Promise<void> {
  if (!allowed) {
    return sendJson(response, 404, {
      error: {
        code: "NOT_FOUND",
        message: "Development tokens are only minted outside production, on a loopback HOST, with JWT_SECRET unset (the development secret); otherwise use `npm run token`",
      },
    });
  }
  // Checked for GET too, so that the sign-in page offers no button that would be refused.
  const refusal = devTokenRefusal(request);
  if (refusal) return sendJson(response, 403, { error: { code: "FORBIDDEN", message: refusal } });
  // GET tells the sign-in page whether to offer the button.
  if (request.method === "GET") return sendJson(response, 200, { available: true });
  if (request.method !== "POST") return sendJson(response, 405, { error: { code: "METHOD_NOT_ALLOWED", message: "Use POST" } });
  // A custom header makes a cross-site request preflighted, which this endpoint never answers.
  if (request.headers["x-conveyor-dev-token"] !== "1") {
    return sendJson(response, 400, { error: { code: "BAD_REQUEST", message: "Send the header X-Conveyor-Dev-Token: 1" } });
  }
  const lifetimeSeconds = Math.min(12 * 3600, config.auth.maxLifetimeSeconds);
  const token = await signToken(DEVELOPMENT_JWT_SECRET, { id: "dev-operator", role: "operator" }, {
    expiresIn: `${lifetimeSeconds}s`,
    issuer: config.auth.issuer,
    audience: config.auth.audience,
  });
  sendJson(response, 200, { token, subject: "dev-operator", expiresInSeconds: lifetimeSeconds });
}

function serveFile(request: IncomingMessage, response: ServerResponse, directory: string, relative: string): void {
  const index = join(directory, "index.html");
  const indexSize = fileSize(index);
  if (indexSize === null) {
    sendText(response, 503, "The dashboard is not built: run `npm run build:dashboard` (`npm start` and `npm run build` do it too).");
    return;
  }
  let file = index;
  let size = indexSize;
  let decoded: string;
  try {
    decoded = decodeURIComponent(relative);
  } catch {
    sendText(response, 400, "Malformed path");
    return;
  }
  const candidate = normalize(join(directory, decoded));
  // A path that leaves the build folder (../) gets the page, like any unknown path.
  const candidateSize = decoded !== "" && candidate.startsWith(directory.endsWith(sep) ? directory : directory + sep) ? fileSize(candidate) : null;
  if (candidateSize !== null) {
    file = candidate;
    size = candidateSize;
  }
  const hashedAsset = file !== index && decoded.startsWith("assets/");
  if (file === index && decoded.startsWith("assets/")) {
    // A missing hashed file is a stale page asking for an old build: a 404, not the page.
    sendText(response, 404, "Not found");
    return;
  }
  response.writeHead(200, {
    ...SECURITY_HEADERS,
    "content-type": CONTENT_TYPES[extname(file)] ?? "application/octet-stream",
    "cache-control": hashedAsset ? "public, max-age=31536000, immutable" : "no-cache",
    "content-length": size,
  });
  if (request.method === "HEAD") {
    response.end();
    return;
  }
  createReadStream(file).pipe(response);
}

/** The size of a regular file, or null when there is none at `path`: one stat per file served. */
function fileSize(path: string): number | null {
  try {
    const stats = statSync(path);
    return stats.isFile() ? stats.size : null;
  } catch {
    return null;
  }
}

function sendText(response: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", ...headers });
  response.end(text);
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  response.end(JSON.stringify(body));
}
