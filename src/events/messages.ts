import type { JobStatus } from "../generated/prisma/enums.js";

/** What every job transition and progress report publishes: ids and the fields that changed. */
export interface JobChange {
  jobId: string;
  type: string;
  owner: string;
  status: JobStatus;
  previousStatus: JobStatus | null;
  stage: string | null;
  progress: number;
  bytesDone: number | null;
  bytesTotal: number | null;
  retryCount: number;
  errorCode: string | null;
  /** ISO time of the change, from the database clock. */
  at: string;
}

export interface QueueHealthChange {
  status: "HEALTHY" | "DEGRADED" | "UNHEALTHY";
  previousStatus: "HEALTHY" | "DEGRADED" | "UNHEALTHY" | null;
  reasons: string[];
  at: string;
}
