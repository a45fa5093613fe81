import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import busboy from "busboy";
import type { YogaServerInstance } from "graphql-yoga";
import { bearerToken, type Viewer } from "../graphql/auth.js";
import type { GraphQLContext } from "../graphql/context.js";
import type { Logger } from "../logger.js";
import type { FileStore, StoredFile } from "../validation-runs/file-store.js";
import { UploadRegistry } from "../validation-runs/upload-registry.js";

/** The headers useCSRFPrevention accepts (src/server/graphql-app.ts): a browser form cannot send them. */
const CSRF_HEADERS = ["x-graphql-yoga-csrf", "apollo-require-preflight"];

/** A refusal with an HTTP status and a stable code, answered as a GraphQL error. */
class UploadRefused extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface MultipartUploadOptions {
  yoga: YogaServerInstance<Record<string, unknown>, GraphQLContext>;
  files: FileStore;
  verifyToken: (token: string) => Promise<Viewer>;
  /** Largest file accepted. */
  maxFileBytes: number;
  /** Largest `operations` or `map` field (the JSON request's limit). */
  maxFieldBytes: number;
  logger: Logger;
}

/**
 * POST /graphql as multipart/form-data (the GraphQL multipart request spec), for
 * createValidationRun's `file: Upload!`. graphql-yoga's own multipart support (through
 * @whatwg-node/server) collects each file into memory before the operation runs, so this route
 * streams the file part straight into the database instead, chunk by chunk, refusing it with 413
 * FILE_TOO_LARGE as soon as it passes the limit (or at once when the declared Content-Length
 * does); then it runs the operation through yoga as a JSON request whose file variable holds a
 * placeholder that only this request's resolvers can exchange for the stored file. Returns false
 * for any other request.
 */
export function createMultipartUploadRoute(options: MultipartUploadOptions) {
  const { yoga, files, verifyToken, maxFileBytes, maxFieldBytes, logger } = options;

  return (request: IncomingMessage, response: ServerResponse, path: string): boolean => {
    if (request.method !== "POST" || path !== "/graphql" || !/^multipart\/form-data/i.test(request.headers["content-type"] ?? "")) return false;
    void handle(request, response).catch((error: unknown) => {
      if (error instanceof UploadRefused) {
        sendError(response, error.status, error.code, error.message, error.extensions);
        return lingerThenClose(request);
      }
      logger.error({ err: error }, "multipart upload failed");
      sendError(response, 500, "INTERNAL_SERVER_ERROR", "Unexpected error.");
    });
    return true;
  };

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (!CSRF_HEADERS.some((name) => request.headers[name] !== undefined)) {
      throw new UploadRefused(403, "CSRF_HEADER_REQUIRED", `Multipart requests need an ${CSRF_HEADERS[0]} (or ${CSRF_HEADERS[1]}) header`);
    }
    // Before a byte of the file is stored: nobody stores files anonymously.
    const token = bearerToken(request.headers.authorization);
    if (!token) throw new UploadRefused(401, "UNAUTHENTICATED", "Authentication required: send a Bearer token");
    let viewer: Viewer;
    try {
      viewer = await verifyToken(token);
    } catch {
      throw new UploadRefused(401, "UNAUTHENTICATED", "The token is invalid or expired");
    }
    const declared = Number(request.headers["content-length"] ?? Number.NaN);
    if (Number.isFinite(declared) && declared > maxFileBytes + 2 * maxFieldBytes) throw tooLarge();

    const uploads = new UploadRegistry();
    try {
      const operations = await receive(request, viewer.id, uploads);
      const headers = new Headers();
      for (const [name, value] of Object.entries(request.headers)) {
        if (value === undefined || ["content-type", "content-length", "transfer-encoding", "connection", "host"].includes(name)) continue;
        headers.set(name, Array.isArray(value) ? value.join(", ") : value);
      }
      headers.set("content-type", "application/json");
      const answer = await yoga.fetch(`http://${request.headers.host ?? "localhost"}/graphql`, { method: "POST", headers, body: JSON.stringify(operations) }, { uploads });
      const body = Buffer.from(await answer.arrayBuffer());
      response.writeHead(answer.status, Object.fromEntries(answer.headers.entries()));
      response.end(body);
    } finally {
      for (const file of uploads.leftovers()) await files.delete(file.id).catch((error: unknown) => logger.error({ err: error }, "deleting an unused upload failed"));
    }
  }

  function tooLarge(): UploadRefused {
    return new UploadRefused(413, "FILE_TOO_LARGE", `Files are limited to ${maxFileBytes} bytes`, { maxBytes: maxFileBytes });
  }

  /**
   * Reads the multipart body: `operations` and `map` first (the spec's order), then the one file,
   * streamed into the file store. Resolves with the operation, its file variable replaced.
   */
  function receive(request: IncomingMessage, owner: string, uploads: UploadRegistry): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const fields = new Map<string, string>();
      let stored: Promise<{ field: string; file: StoredFile }> | null = null;
      let fileStream: Readable | null = null;
      let settled = false;
      let parser: busboy.Busboy;
      try {
        parser = busboy({ headers: request.headers, limits: { files: 1, fields: 2, fileSize: maxFileBytes + 1, fieldSize: maxFieldBytes } });
      } catch {
        return reject(new UploadRefused(400, "BAD_REQUEST", "The multipart body cannot be parsed (boundary missing?)"));
      }
      const fail = (error: unknown) => {
        if (settled) return;
        settled = true;
        // Stop reading: the rest of the body is not wanted, and the file being stored is dropped.
        request.unpipe(parser);
        if (fileStream && !fileStream.destroyed) fileStream.destroy(error instanceof Error ? error : new Error("upload failed"));
        // A file stored whole before the refusal (a field or a second file came after it) is handed
        // to the request's registry first, so that the request's cleanup deletes it.
        const storedFile = stored?.then(({ file }) => uploads.add(`refused:${file.id}`, file), () => undefined);
        void Promise.resolve(storedFile).then(() => reject(error));
      };
      parser.on("field", (name, value, info) => {
        if (info.valueTruncated) return fail(new UploadRefused(413, "PAYLOAD_TOO_LARGE", `The ${name} field is limited to ${maxFieldBytes} bytes`));
        fields.set(name, value);
      });
      parser.on("file", (name, stream) => {
        // Refused already (a part busboy had buffered comes after the refusal): nothing of it is
        // stored, and nobody would delete it but the day-old orphan sweep.
        if (settled) {
          stream.resume();
          return;
        }
        if (!fields.has("operations") || !fields.has("map")) {
          stream.resume();
          return fail(new UploadRefused(400, "BAD_REQUEST", "The operations and map fields must come before the file (GraphQL multipart request spec)"));
        }
        fileStream = stream;
        stored = files.write(owner, limited(stream)).then((file) => ({ field: name, file }));
        // Failures are handled where `stored` is awaited; this only keeps them from going unhandled meanwhile.
        stored.catch(fail);
      });
      for (const event of ["filesLimit", "fieldsLimit"] as const) {
        parser.on(event, () => fail(new UploadRefused(400, "BAD_REQUEST", "Send the operations and map fields and exactly one file")));
      }
      parser.on("error", () => fail(new UploadRefused(400, "BAD_REQUEST", "The multipart body is malformed or was cut short")));
      parser.on("close", () => {
        void (async () => {
          if (!stored) throw new UploadRefused(400, "BAD_REQUEST", "The request holds no file");
          const { field, file } = await stored;
          // Registered at once, so that it is deleted with the request's leftovers whatever follows.
          const placeholder = `upload:${randomUUID()}`;
          uploads.add(placeholder, file);
          resolve(withPlaceholder(fields, field, placeholder));
        })().catch(fail);
      });
      request.on("aborted", () => fail(new UploadRefused(400, "BAD_REQUEST", "The upload was cut short")));
      request.pipe(parser);
    });
  }

  // The file's bytes as they arrive; past the limit (busboy's says "limit" on reaching its own, one
  // byte more), the stream fails at once (busboy would go on reading the request to its end).
  function limited(stream: Readable): AsyncIterable<Buffer> {
    stream.once("limit", () => stream.destroy(tooLarge()));
    // The store reads the stream only once the file's row exists: a refusal meanwhile (a second
    // file, a field after it) destroys the stream with its error before anyone listens, and an
    // 'error' without a listener ends the process. The store's reading still throws it.
    stream.on("error", () => {});
    return stream;
  }
}

function withPlaceholder(fields: Map<string, string>, field: string, placeholder: string): Record<string, unknown> {
  const operations = parseJson(fields.get("operations")!, "operations");
  const map = parseJson(fields.get("map")!, "map");
  if (operations === null || typeof operations !== "object" || Array.isArray(operations)) {
    throw new UploadRefused(400, "BAD_REQUEST", "operations must be one GraphQL request (batches are not supported with uploads)");
  }
  const paths = (map as Record<string, unknown> | null)?.[field];
  if (!Array.isArray(paths) || paths.length !== 1 || typeof paths[0] !== "string") {
    throw new UploadRefused(400, "BAD_REQUEST", `map must give the file "${field}" exactly one path, such as ["variables.file"]`);
  }
  const [root, ...keys] = paths[0].split(".");
  if (root !== "variables" || keys.length === 0) throw new UploadRefused(400, "BAD_REQUEST", "A file's path must start with variables.");
  // Only a variable the operation already holds, set to null as the spec asks, is replaced: a path
  // must never create properties (`variables.__proto__.x` would reach every object's prototype).
  const noVariable = () => new UploadRefused(400, "BAD_REQUEST", `The path ${paths[0]} must name a variable that operations sets to null`);
  let target: unknown = (operations as Record<string, unknown>).variables;
  for (const [index, key] of keys.entries()) {
    if (target === null || typeof target !== "object" || UNSAFE_KEYS.has(key) || !Object.hasOwn(target, key)) throw noVariable();
    const holder = target as Record<string, unknown>;
    if (index < keys.length - 1) {
      target = holder[key];
      continue;
    }
    if (holder[key] !== null) throw noVariable();
    holder[key] = placeholder;
  }
  return operations as Record<string, unknown>;
}

const UNSAFE_KEYS = new Set(["__proto__", "constructor", "prototype"]);

function parseJson(text: string, name: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new UploadRefused(400, "BAD_REQUEST", `The ${name} field is not JSON`);
  }
}

/** How much of a refused body is read and dropped, at most, while the client reads the answer. */
const LINGER_MS = 2000;
const LINGER_BYTES = 8 * 1024 * 1024;

/**
 * After refusing a request whose body is still coming: closing at once would reset the connection
 * while the client is still sending, and clients then often lose the answer (EPIPE before they read
 * it). The body is drained and dropped for a short while, bounded in time and bytes, then the
 * connection is closed; a client that stops sending on the answer costs nothing more.
 */
function lingerThenClose(request: IncomingMessage): void {
  if (request.complete) return;
  let drained = 0;
  const close = () => request.socket.destroy();
  const timer = setTimeout(close, LINGER_MS);
  timer.unref();
  request.on("data", (data: Buffer) => {
    drained += data.length;
    if (drained > LINGER_BYTES) close();
  });
  request.once("end", () => clearTimeout(timer));
  request.once("close", () => clearTimeout(timer));
  request.resume();
}

function sendError(response: ServerResponse, status: number, code: string, message: string, extensions: Record<string, unknown> = {}): void {
  if (response.headersSent) return void response.end();
  response.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  response.end(JSON.stringify({ errors: [{ message, extensions: { code, ...extensions } }] }));
}
