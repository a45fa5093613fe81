// What a fan-out client process and a fan-out server report (bench/support/fanout-clients.ts and
// fanout-server.ts), for the scripts that read them.
export type Report = {
  counts: { progress: number; progressBeforeMeasuring: number; completed: number; other: number; errors: number; ended: number; subscriptions: number };
  last: { progressMs: number; completedMs: number; endedMs: number };
  errorSamples: string[];
  latencies: number[];
  fromDatabaseClock: number[];
  fromDue: number[];
  cpuCores: number;
  eventLoopDelayMs: { p50: number; p99: number; max: number };
};

export type ServerStats = { memory: Record<string, number>; eventLoopDelayMs: { p50: number; p99: number; max: number } };
