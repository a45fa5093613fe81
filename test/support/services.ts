// Throw-away services for tests that must stop and start them (never the machine's shared ones).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { eventually } from "./conveyor.js";

export const REDIS_SERVER = "/usr/bin/redis-server";
export const redisServerAvailable = existsSync(REDIS_SERVER);

// Ports handed out in this worker: each vitest worker has a range of its own, below the range the
// system takes ports for outgoing connections from. A test that stops a server and starts it again
// on the same port leaves it free meanwhile; from the system's "any free port", a test in another
// worker could get it, start its own server there, and the two would talk to each other's.
const PORTS_PER_WORKER = 500;
const worker = Number(process.env.VITEST_POOL_ID ?? 0) % 24;
let portsHandedOut = 0;

/** A port nothing listens on now, and that no other test of this run is handed. */
export async function freePort(): Promise<number> {
  while (portsHandedOut < PORTS_PER_WORKER) {
    const port = 20_000 + worker * PORTS_PER_WORKER + portsHandedOut++;
    if (await canListen(port)) return port;
  }
  throw new Error(`this test worker has used its ${PORTS_PER_WORKER} ports`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A private, throw-away redis-server (no persistence) on `port`, once it accepts connections. */
export async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(REDIS_SERVER, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  await eventually(
    () =>
      new Promise<boolean>((resolve) => {
        const socket = createConnection({ port, host: "127.0.0.1" }, () => (socket.end(), resolve(true)));
        socket.once("error", () => resolve(false));
      }),
    10_000,
    50,
  );
  // Something else answered on the port, and this server could not bind it.
  if (child.exitCode !== null) throw new Error(`redis-server could not listen on port ${port}: the port is taken`);
  return child;
}

export async function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}
