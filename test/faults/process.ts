import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { signToken } from "../../src/graphql/auth.js";

export const REPOSITORY = fileURLToPath(new URL("../..", import.meta.url));
export const TEST_SECRET = "a-test-secret-of-at-least-thirty-two-characters";

export interface ConveyorProcess {
  child: ChildProcess;
  /** Everything it printed, stdout and stderr. */
  output: () => string;
  /** Resolves with the URL from its "Conveyor is listening" line. */
  listening: Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * `npm start` as a terminal runs it (`node --import tsx src/main.ts`), in a process group of its
 * own (detached) so a test can signal the whole group as Ctrl-C does. Runs on the embedded
 * database: DATABASE_URL and REDIS_URL of the test run are removed.
 */
export function startConveyorProcess(options: { cwd?: string; environment: Record<string, string> }): ConveyorProcess {
  const environment: Record<string, string | undefined> = { ...process.env };
  delete environment.DATABASE_URL;
  delete environment.REDIS_URL;
  delete environment.VITEST;
  delete environment.VITEST_POOL_ID;
  delete environment.VITEST_WORKER_ID;
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: options.cwd ?? REPOSITORY,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...environment, NODE_ENV: "test", HOST: "127.0.0.1", LOG_LEVEL: "info", JWT_SECRET: TEST_SECRET, ...options.environment },
  });
  let output = "";
  const listening = new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8");
      const line = output.split("\n").find((candidate) => candidate.includes("Conveyor is listening"));
      if (line) resolve((JSON.parse(line) as { url: string }).url);
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.once("exit", (code) => reject(new Error(`Conveyor exited with ${code} before listening:\n${output}`)));
  });
  listening.catch(() => {});
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  return { child, output: () => output, listening, exited };
}

/** Kills a process group left behind by a failed test; nothing if it already exited. */
export function killGroup(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

export function tokenAs(sub: string, role: "user" | "operator" = "user"): Promise<string> {
  return signToken(TEST_SECRET, { id: sub, role });
}

export async function post(url: string, token: string, query: string, variables: Record<string, unknown> = {}): Promise<any> {
  const response = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: any; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}
