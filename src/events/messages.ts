import type { JobStatus } from "../generated/prisma/enums.js";

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The topic of one job's changes is this prefix and the job's id; jobs:changed has every job's. */
export const JOB_TOPIC_PREFIX = "job:changed:";

export function jobTopic(jobId: string): string {
  return `${JOB_TOPIC_PREFIX}${jobId}`;
}

/** The job whose topic this is, or null for a topic of another kind. */
export function jobIdOfTopic(topic: string): string | null {
  return topic.startsWith(JOB_TOPIC_PREFIX) ? topic.slice(JOB_TOPIC_PREFIX.length) : null;
}

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
  /**
   * The job's revision with this change: one more with each state change, the same for progress
   * within an attempt. A change older than one already shown is stale (change-order.ts).
   */
  revision: number;
  /** ISO time of the change, from the database clock. */
  at: string;
}

export interface QueueHealthChange {
  status: "HEALTHY" | "DEGRADED" | "UNHEALTHY";
  previousStatus: "HEALTHY" | "DEGRADED" | "UNHEALTHY" | null;
  reasons: string[];
  at: string;
}
