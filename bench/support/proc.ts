// CPU time and memory of processes from /proc (Linux), to tell which side of a benchmark is busy.
import { readdirSync, readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) a process has used so far; 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** Resident memory (VmRSS) in MB. */
export function rssMegabytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((entry) => entry.startsWith("VmRSS:"))!;
  return Math.round(Number(line.replace(/\D+/g, "")) / 1024);
}

/** CPU seconds used so far by each PostgreSQL process on the machine (backends and auxiliaries). */
export function postgresCpuSeconds(): Map<number, number> {
  const byPid = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      if (name === "postgres" || name.startsWith("postgres:") || name === "postmaster") byPid.set(Number(entry), cpuSeconds(Number(entry)));
    } catch {
      // gone meanwhile
    }
  }
  return byPid;
}

/** CPU PostgreSQL used between two snapshots (processes that exited meanwhile are not counted). */
function postgresDelta(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, seconds] of after) total += seconds - (before.get(pid) ?? 0);
  return total;
}

/** Busy cores of each side over an interval: `const stop = cpuMeter({ server: pid }); …; stop()`. */
export function cpuMeter(pids: Record<string, number | (() => number)>): () => Record<string, number> {
  const started = performance.now();
  const read = () =>
    Object.fromEntries(
      Object.entries(pids).map(([name, pid]) => [name, typeof pid === "function" ? pid() : cpuSeconds(pid)]),
    );
  const before = read();
  const postgresBefore = postgresCpuSeconds();
  return () => {
    const seconds = (performance.now() - started) / 1000;
    const after = read();
    const cores = Object.fromEntries(Object.entries(after).map(([name, value]) => [name, Number(((value - before[name]!) / seconds).toFixed(2))]));
    return { ...cores, postgres: Number((postgresDelta(postgresBefore, postgresCpuSeconds()) / seconds).toFixed(2)) };
  };
}

/** This process's own CPU seconds. */
export function ownCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/** The middle value, or the mean of the two middle ones. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
