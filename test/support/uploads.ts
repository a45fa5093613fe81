import { request as httpRequest } from "node:http";
import type { Conveyor } from "../../src/app.js";

export const CREATE_VALIDATION_RUN = `mutation($file: Upload!, $ruleSet: String!, $correlationId: String) {
  createValidationRun(file: $file, ruleSet: $ruleSet, correlationId: $correlationId) { created run { id ruleSet correlationId fileBytes } job { id status } }
}`;

export interface UploadResponse {
  status: number;
  text: string;
  body: { data?: any; errors?: { message: string; extensions?: { code?: string; [key: string]: unknown } }[] };
}

/**
 * createValidationRun over real HTTP as a browser sends it: a multipart request (GraphQL multipart
 * request spec) with the CSRF header.
 */
export async function uploadValidationFile(
  conveyor: Conveyor,
  token: string | undefined,
  file: Buffer | string,
  variables: { ruleSet?: string; correlationId?: string } = {},
  options: { headers?: Record<string, string>; query?: string } = {},
): Promise<UploadResponse> {
  const form = new FormData();
  form.set("operations", JSON.stringify({ query: options.query ?? CREATE_VALIDATION_RUN, variables: { file: null, ruleSet: "billing-lines", ...variables } }));
  form.set("map", JSON.stringify({ 0: ["variables.file"] }));
  form.set("0", new Blob([typeof file === "string" ? file : new Uint8Array(file)]), "lines.csv");
  const response = await fetch(`${conveyor.url}/graphql`, {
    method: "POST",
    headers: { "x-graphql-yoga-csrf": "1", ...(token ? { authorization: `Bearer ${token}` } : {}), ...options.headers },
    body: form,
  });
  const text = await response.text();
  return { status: response.status, text, body: JSON.parse(text) };
}

/**
 * What comes before and after a file's bytes in a multipart request (GraphQL multipart request
 * spec) whose operation takes the file as `variables.file`: for clients that stream the file.
 */
export function multipartEnvelope(boundary: string, operation: { query: string; variables: Record<string, unknown> }): { head: Buffer; tail: Buffer } {
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${JSON.stringify(operation)}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0":["variables.file"]}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="0"; filename="lines.csv"\r\nContent-Type: text/csv\r\n\r\n`,
  );
  return { head, tail: Buffer.from(`\r\n--${boundary}--\r\n`) };
}

/**
 * Sends a multipart upload of `fileBytes` bytes, `chunkBytes` at a time, and stops writing as soon
 * as the server answers. With `declareLength`, the request says its full length up front and only
 * its first piece is sent before waiting for the answer (a server that needs the rest never
 * answers); without, it is sent chunked until the answer comes. Returns the answer and how many
 * body bytes were written.
 */
export function streamUpload(
  conveyor: Conveyor,
  token: string,
  options: { fileBytes: number; chunkBytes?: number; declareLength: boolean },
): Promise<{ status: number; text: string; bytesWritten: number; bodyBytes: number }> {
  const boundary = "----conveyor-test-boundary";
  const { head, tail } = multipartEnvelope(boundary, { query: CREATE_VALIDATION_RUN, variables: { file: null, ruleSet: "billing-lines" } });
  const bodyBytes = head.length + options.fileBytes + tail.length;
  const chunk = Buffer.alloc(options.chunkBytes ?? 64 * 1024, 0x61);
  const url = new URL(`${conveyor.url}/graphql`);
  return new Promise((resolve, reject) => {
    let answered = false;
    let bytesWritten = 0;
    const request = httpRequest({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "x-graphql-yoga-csrf": "1",
        "content-type": `multipart/form-data; boundary=${boundary}`,
        ...(options.declareLength ? { "content-length": String(bodyBytes) } : { "transfer-encoding": "chunked" }),
      },
    });
    request.on("response", (response) => {
      answered = true;
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (data: string) => (text += data));
      const finish = () => {
        resolve({ status: response.statusCode ?? 0, text, bytesWritten, bodyBytes });
        request.destroy();
      };
      response.on("end", finish);
      response.on("error", finish);
    });
    // The server closes the connection after refusing; writes still in flight then fail.
    request.on("error", (error) => (answered ? undefined : reject(error)));
    void (async () => {
      const write = (data: Buffer) =>
        new Promise<void>((done) => {
          bytesWritten += data.length;
          if (request.write(data)) done();
          else request.once("drain", done);
          request.once("response", () => done());
        });
      await write(head);
      let remaining = options.fileBytes;
      if (options.declareLength) return void (await write(chunk));
      while (remaining > 0 && !answered && !request.destroyed) {
        const piece = remaining >= chunk.length ? chunk : chunk.subarray(0, remaining);
        await write(piece);
        remaining -= piece.length;
      }
      if (!answered && !request.destroyed) request.end(tail);
    })();
  });
}
