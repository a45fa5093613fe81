// Benchmark helpers run in child processes (tsx), with a raised open-files limit.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

export interface Child {
  process: ChildProcess;
  pid: number;
  /** The first `listening <url>` line the child printed, if it prints one. */
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts `node --import tsx <script>` under `ulimit -n <openFiles>` (root may raise its hard limit),
 * and waits for its `listening <url>` line (or, with `waitFor: "ready"`, for a `ready` line).
 * stdout lines other than those are passed through; stderr is inherited.
 */
export async function startChild(
  script: string,
  options: { env: NodeJS.ProcessEnv; nodeArgs?: string[]; openFiles?: number; ipc?: boolean; waitFor?: "listening" | "ready" },
): Promise<Child> {
  const path = fileURLToPath(new URL(`./${script}`, import.meta.url));
  const command = [process.execPath, ...(options.nodeArgs ?? []), "--import", "tsx", path].map(shellQuote).join(" ");
  const child = spawn("/bin/sh", ["-c", `ulimit -n ${options.openFiles ?? 65536} 2>/dev/null || true; exec ${command}`], {
    env: options.env,
    stdio: ["ignore", "pipe", "inherit", ...(options.ipc ? (["ipc"] as const) : [])],
  });
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once("exit", () => ((exited = true), resolve())));
  const url = await new Promise<string>((resolve, reject) => {
    let buffered = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        const listening = /^listening (\S+)/.exec(line);
        if (listening) resolve(listening[1]!);
        else if (line === "ready") resolve("");
        else process.stdout.write(`  [${script}] ${line}\n`);
      }
    });
    child.once("exit", (code) => reject(new Error(`${script} exited with ${code} before it was ready`)));
  });
  return {
    process: child,
    pid: child.pid!,
    url,
    async stop() {
      if (exited) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exit;
      clearTimeout(timer);
    },
  };
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * Sends `message` to a child over IPC and resolves with its first reply of type `reply`; rejects if
 * the child exits first (a crashed server must end the benchmark's wait, not hang it).
 */
export function request<T>(child: Child, message: object, reply: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const listener = (answer: { type: string }) => {
      if (answer.type !== reply) return;
      done();
      resolve(answer as T);
    };
    const exited = (code: number | null, signal: string | null) => {
      done();
      reject(new ChildExitedError(`the child process ${child.pid} exited (${signal ?? `code ${code}`}) before replying "${reply}"`));
    };
    const done = () => {
      child.process.off("message", listener);
      child.process.off("exit", exited);
    };
    if (child.process.exitCode !== null || child.process.signalCode !== null) return exited(child.process.exitCode, child.process.signalCode);
    child.process.on("message", listener);
    child.process.once("exit", exited);
    child.process.send(message);
  });
}

export class ChildExitedError extends Error {
  override name = "ChildExitedError";
}

/**
 * The environment of a Conveyor server in a child process, as a production deployment runs it: a
 * free loopback port, quiet logs, the benchmark's JWT secret, no Redis; `overrides` win.
 */
export function serverEnvironment(databaseUrl: string, secret: string, overrides: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: databaseUrl,
    PORT: "0",
    HOST: "127.0.0.1",
    NODE_ENV: "production",
    LOG_LEVEL: "warn",
    JWT_SECRET: secret,
    REDIS_URL: "",
    ...overrides,
  };
}

/** PROFILE=<directory>: node flags for a V8 CPU profile of a child (written when it stops). */
export function profileFlags(): string[] {
  return process.env.PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(process.env.PROFILE)}`] : [];
}
