/**
 * Conveyor's public API, for services that embed the engine and register their own job types.
 * The server (src/main.ts) is one use of it. See "Use Conveyor in your service" in the README and
 * examples/send-report/.
 *
 * ```ts
 * const conveyor = await createConveyor({ config: loadConfig({ ...process.env, PORT: "0" }), handlers: [sendReport] });
 * await conveyor.start();
 * const { job } = await conveyor.enqueue(sendReport.job({ reportId }), { client }); // inside your transaction
 * await client.query("COMMIT");
 * conveyor.announce(job);
 * const unsubscribe = conveyor.subscribe(job.id, (change) => console.log(change.status));
 * await conveyor.stop();
 * ```
 */

export { createConveyor, type Conveyor, type ConveyorOptions, type LibraryEnqueueOptions } from "./app.js";
export { loadConfig, ConfigError, type Config } from "./config.js";
export { createLogger, type Logger } from "./logger.js";

export { defineHandler, type DefinedHandler, type HandlerDefinition, type JobRequest } from "./handlers/define-handler.js";
export type { JobContext, JobHandler, ProgressReport } from "./handlers/registry.js";

export {
  JobValidationError,
  PermanentJobError,
  RecoverableJobError,
  UnrepresentableResultError,
  type ValidationFailure,
} from "./jobs/job-errors.js";
export type { ErrorCategory } from "./jobs/error-categories.js";
export { InvalidJobInputError, UnknownJobTypeError } from "./jobs/enqueue-errors.js";
export { JobsHeldError } from "./jobs/lifecycle.js";
export { JobPriority, JobStatus, RUNNABLE_STATUSES, TERMINAL_STATUSES, type Clock, type Job } from "./jobs/types.js";
export type { EnqueueInput, EnqueueResult, Queryable } from "./jobs/queue.js";
export type { JobChange } from "./events/messages.js";
