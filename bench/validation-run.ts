// A validation run on a generated CSV file of about 1 GB (BENCH_BYTES to change it) of billing
// lines with known violations: the file is uploaded over HTTP as createValidationRun's multipart
// request to a Conveyor server in a child process (worker pool on), then validated by its
// validation-run job. Prints the server's RSS every second through upload and validation, then
// rows/s and MB/s of the validation (the job's processing time), the RSS range, and whether the
// findings match the generator's count. Before the server starts, the same reading in this process
// on the file's first 100 MB (the parser alone, then with the rules), in rows per wall-clock second
// and per CPU-second (the machine is shared: CPU time says what the code costs, wall time what
// the load left), gives the ceiling the database and the job leave room for. The file lives under
// /tmp and is deleted at the end. Numbers measured so far (a loaded, shared 2-core machine) are in
// the README's benchmark table.
//
//   npm run bench:validation            # 1 GB
//   BENCH_BYTES=200000000 npm run bench:validation
//   PROFILE=.scratch/prof npm run bench:validation   # CPU profile of the server
import { createReadStream, createWriteStream, rmSync, statSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { signToken } from "../src/graphql/auth.js";
import { CsvFileReader, type CsvRecordSink } from "../src/validation-runs/csv-reader.js";
import { CHUNK_BYTES } from "../src/validation-runs/file-store.js";
import { RowValidator } from "../src/validation-runs/row-validator.js";
import { loadRuleSets } from "../src/validation-runs/rule-sets.js";
import { BILLING_HEADER, billingRow } from "../test/support/billing-lines-csv.js";
import { multipartEnvelope } from "../test/support/uploads.js";
import { profileFlags, serverEnvironment, startChild } from "./support/child.js";
import { createBenchDatabase } from "./support/database.js";
import { cpuSeconds, rssMegabytes } from "./support/proc.js";

const TARGET_BYTES = Number(process.env.BENCH_BYTES ?? 1_000_000_000);
const SECRET = randomBytes(32).toString("hex");

async function generate(file: string): Promise<{ rows: number; bytes: number; findings: number }> {
  const out = createWriteStream(file);
  let bytes = 0;
  let rows = 0;
  let findings = 0;
  let batch = BILLING_HEADER.join(",") + "\r\n";
  while (bytes + batch.length < TARGET_BYTES) {
    rows++;
    const { cells, broken } = billingRow(rows);
    findings += broken.length;
    // The descriptions hold commas: quoted, as a spreadsheet writes them.
    batch += cells.map((cell) => (cell.includes(",") ? `"${cell}"` : cell)).join(",") + "\r\n";
    if (batch.length > 1 << 20) {
      bytes += Buffer.byteLength(batch);
      if (!out.write(batch)) await once(out, "drain");
      batch = "";
    }
  }
  bytes += Buffer.byteLength(batch);
  out.end(batch);
  await once(out, "finish");
  return { rows, bytes, findings };
}

/** Streams the file as a multipart request; resolves with the GraphQL answer. */
function upload(url: string, token: string, file: string, bytes: number): Promise<any> {
  const boundary = `----bench${randomBytes(8).toString("hex")}`;
  const { head, tail } = multipartEnvelope(boundary, {
    query: `mutation($file: Upload!) { createValidationRun(file: $file, ruleSet: "billing-lines") { run { id } job { id } } }`,
    variables: { file: null },
  });
  const target = new URL(`${url}/graphql`);
  return new Promise((resolve, reject) => {
    const request = httpRequest({
      host: target.hostname,
      port: target.port,
      path: target.pathname,
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "x-graphql-yoga-csrf": "1",
        "content-type": `multipart/form-data; boundary=${boundary}`,
        "content-length": String(head.length + bytes + tail.length),
      },
    });
    request.on("response", (response) => {
      let text = "";
      response.on("data", (data: Buffer) => (text += data));
      response.on("end", () => (response.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`upload answered ${response.statusCode}: ${text}`))));
    });
    request.on("error", reject);
    request.write(head);
    const stream = createReadStream(file, { highWaterMark: 1 << 20 });
    stream.pipe(request, { end: false });
    stream.on("end", () => request.end(tail));
  });
}

/**
 * The same reading in this process, without the server, the database or the job around it, over
 * the file's first `bytes`: the parser alone (a sink that drops records), then parser and rules.
 */
async function inProcessRates(file: string, bytes: number): Promise<{ parseOnly: Rate; parseAndValidate: Rate }> {
  const ruleSet = loadRuleSets().get("billing-lines")!;
  const rate = async (sink: () => CsvRecordSink) => {
    const target = sink();
    const reader = new CsvFileReader(target);
    const started = performance.now();
    const cpuStarted = process.cpuUsage();
    let read = 0;
    for await (const chunk of createReadStream(file, { highWaterMark: CHUNK_BYTES }) as AsyncIterable<Buffer>) {
      // Up to the last whole line within `bytes`.
      const last = read + chunk.length >= bytes;
      reader.push(last ? chunk.subarray(0, chunk.lastIndexOf(10, bytes - read - 1) + 1) : chunk);
      read += chunk.length;
      if (last) break;
    }
    reader.end();
    const cpu = process.cpuUsage(cpuStarted);
    return {
      wall: Math.round((reader.records - 1) / ((performance.now() - started) / 1000)),
      cpu: Math.round((reader.records - 1) / ((cpu.user + cpu.system) / 1e6)),
    };
  };
  const parseOnly = await rate(() => ({ header: () => {}, row: () => {} }));
  const parseAndValidate = await rate(() => new RowValidator(ruleSet, 100));
  return { parseOnly, parseAndValidate };
}

interface Rate {
  wall: number;
  cpu: number;
}

const formatRate = (rate: Rate) => `${rate.wall.toLocaleString("en")} rows/s (${rate.cpu.toLocaleString("en")} per CPU-second)`;

async function query(url: string, token: string, text: string, variables: Record<string, unknown>): Promise<any> {
  const response = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: text, variables }),
  });
  const body = (await response.json()) as { data?: any; errors?: unknown };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

const file = path.join(tmpdir(), `conveyor-bench-${randomBytes(4).toString("hex")}.csv`);
const database = await createBenchDatabase();
let server: Awaited<ReturnType<typeof startChild>> | null = null;
try {
  console.log(`generating ${(TARGET_BYTES / 1e6).toFixed(0)} MB of billing lines in ${file} …`);
  const generated = await generate(file);
  console.log(`generated ${generated.rows.toLocaleString("en")} rows, ${(statSync(file).size / 1e6).toFixed(1)} MB, ${generated.findings.toLocaleString("en")} findings expected`);

  const sampleBytes = Math.min(generated.bytes, 100_000_000);
  const rates = await inProcessRates(file, sampleBytes);
  console.log(
    `in this process, first ${(sampleBytes / 1e6).toFixed(0)} MB (load average ${loadavg()[0]!.toFixed(1)}): parser alone ${formatRate(rates.parseOnly)}, with the rules ${formatRate(rates.parseAndValidate)}`,
  );

  server = await startChild("api-server.ts", {
    env: serverEnvironment(database.url, SECRET, {
      WORKER_ENABLED: "true",
      WORKER_CONCURRENCY: "2",
      VALIDATION_MAX_UPLOAD_BYTES: String(2 * TARGET_BYTES),
      JOB_TIMEOUT_MS: String(3600_000),
      STALLED_THRESHOLD_MS: String(3600_000),
    }),
    nodeArgs: profileFlags(),
  });
  const token = await signToken(SECRET, { id: "bench", role: "user" });
  const samples: { phase: string; rss: number; load: number }[] = [];
  let phase = "upload";
  let jobState = "";
  const began = Date.now();
  const ticker = setInterval(() => {
    const rss = rssMegabytes(server!.pid);
    samples.push({ phase, rss, load: loadavg()[0]! });
    console.log(`  t=${String(Math.round((Date.now() - began) / 1000)).padStart(4)} s  server RSS ${String(rss).padStart(5)} MB  ${phase}${jobState ? `  ${jobState}` : ""}`);
  }, 1000);

  const uploadStart = Date.now();
  const answer = await upload(server.url, token, file, generated.bytes);
  const uploadSeconds = (Date.now() - uploadStart) / 1000;
  console.log(`uploaded in ${uploadSeconds.toFixed(1)} s (${(generated.bytes / 1e6 / uploadSeconds).toFixed(1)} MB/s)`);
  const jobId = answer.data.createValidationRun.job.id as string;
  const runId = answer.data.createValidationRun.run.id as string;
  phase = "validation";
  const serverCpuBefore = cpuSeconds(server.pid);

  let job: any;
  for (;;) {
    job = (await query(server.url, token, `query($id: ID!) { job(id: $id) { status stage progress bytesDone bytesTotal processingTimeMs error { category message } } }`, { id: jobId })).job;
    jobState = `${job.status} ${job.stage ?? ""} ${job.progress}%`;
    if (["COMPLETED", "FAILED", "VALIDATION_FAILED", "CANCELLED"].includes(job.status)) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  clearInterval(ticker);
  const serverCpu = cpuSeconds(server.pid) - serverCpuBefore;
  if (job.status !== "COMPLETED") throw new Error(`the run ended ${job.status}: ${JSON.stringify(job.error)}`);
  const report = (await query(server.url, token, `query($id: ID!) { validationRun(id: $id) { report { rows findingsTotal } } }`, { id: runId })).validationRun.report;
  const seconds = job.processingTimeMs / 1000;
  const during = samples.filter((sample) => sample.phase === "validation").map((sample) => sample.rss);
  const whileUploading = samples.filter((sample) => sample.phase === "upload").map((sample) => sample.rss);
  console.log("");
  const loads = samples.filter((sample) => sample.phase === "validation").map((sample) => sample.load);
  console.log(`validated ${report.rows.toLocaleString("en")} rows in ${seconds.toFixed(1)} s: ${Math.round(report.rows / seconds).toLocaleString("en")} rows/s, ${(generated.bytes / 1e6 / seconds).toFixed(1)} MB/s`);
  // The server's CPU from the end of the upload to the end of the job: the job, the file's reads and the bench's polling.
  console.log(`server CPU while validating: ${serverCpu.toFixed(1)} s, ${Math.round(report.rows / serverCpu).toLocaleString("en")} rows per CPU-second; load average ${loads.length ? `${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}` : "?"}`);
  console.log(`findings ${report.findingsTotal.toLocaleString("en")} (expected ${generated.findings.toLocaleString("en")}: ${report.findingsTotal === generated.findings ? "match" : "MISMATCH"})`);
  if (whileUploading.length) console.log(`server RSS while uploading: ${Math.min(...whileUploading)}–${Math.max(...whileUploading)} MB`);
  if (during.length) console.log(`server RSS while validating: ${Math.min(...during)}–${Math.max(...during)} MB over ${during.length} samples`);
} finally {
  await server?.stop();
  rmSync(file, { force: true });
  await database.drop();
}
