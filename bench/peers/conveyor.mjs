// Conveyor adapter for the side-by-side peer benchmark (../shared/bench-peers, see its README).
//
//   node ../shared/bench-peers/bench.mjs --adapter bench/peers/conveyor.mjs [--n 2000]
//   ADAPTERS="... $PWD/bench/peers/conveyor.mjs $PWD/bench/peers/conveyor-one-instance.mjs" bash ../shared/bench-peers/run.sh
//
// Conveyor is used the way a user embeds it: loadConfig(env) + createConveyor({ config, handlers,
// logger }), jobs added with conveyor.jobs.enqueue / enqueueMany, one handler type registered.
// This file: two instances in the benchmark process, as a deployment with an API instance and a
// worker instance:
//   - a producer (WORKER_ENABLED=false), created and started in reset(), which enqueues;
//   - a worker (WORKER_ENABLED=true, WORKER_CONCURRENCY=c), created and started in startWorker(c),
//     stopped in stop().
// conveyor-one-instance.mjs: one instance at a time, as `npm start` runs the API and the pool in
// one process: the producer enqueues until startWorker(c), which replaces it with an instance that
// runs the pool and takes the enqueues from then on (an idle pool then takes a job from its enqueue
// statement itself: WorkerPool.offerSlots).
// Each test runs on a database of its own (`conveyor_peers` on ctx.pgUrl's server, dropped and
// recreated in reset()), migrated by Conveyor itself when the producer is created, so the jobs table
// is new and never analyzed. Nothing here runs ANALYZE, warms a cache or sets anything private.
//
// Conveyor is TypeScript: tsx's ESM loader (a dependency of the project) is registered here, and
// src/*.ts is imported through its .js specifiers. Everything resolves from this file's location
// (/work/main/node_modules), not from the harness's PEERS_DIR.
import { readFileSync } from 'node:fs';
import { register } from 'tsx/esm/api';
import pg from 'pg';

register();
const { createConveyor } = await import('../../src/app.js');
const { loadConfig } = await import('../../src/config.js');
const { createLogger } = await import('../../src/logger.js');

const PACKAGE = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
const DATABASE = 'conveyor_peers';
const TYPE = 'bench';
const OWNER = 'bench';
const LOG_LEVEL = 'warn';

const quote = (name) => `"${name.replaceAll('"', '""')}"`;

export default function create(context) {
  return createAdapter(context, { oneInstance: false });
}

/** `oneInstance`: the instance that runs the pool also takes the enqueues (conveyor-one-instance.mjs). */
export async function createAdapter({ pgUrl }, { oneInstance }) {
  const url = new URL(pgUrl);
  url.pathname = `/${DATABASE}`;
  const databaseUrl = url.toString();
  // Admin connection on the harness's database (`peers`): creates and drops Conveyor's own.
  const admin = new pg.Pool({ connectionString: pgUrl, max: 1 });
  admin.on('error', () => {});

  // The environment a user would set. Everything not listed is Conveyor's default.
  const environment = {
    DATABASE_URL: databaseUrl,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL,
    RETRY_INITIAL_DELAY_MS: '0',
    RETRY_JITTER: '0',
  };
  // Conveyor logs JSON lines to stdout by default; at "warn" it writes none in a normal run, and
  // stderr keeps bench.mjs's stdout (its JSON result) clean if it ever does.
  const logger = createLogger(LOG_LEVEL, {}, process.stderr);

  let handle = async () => {}; // the harness's handler for the current worker
  const handler = {
    type: TYPE,
    async run(payload) {
      await handle(payload); // a throw is a failed attempt, retried while attempts are left
      return null;
    },
  };

  let producer = null;
  let worker = null;
  let counter = null; // pending(): a small pool of our own on Conveyor's database

  async function stopAll() {
    await worker?.stop();
    worker = null;
    await producer?.stop();
    producer = null;
    await counter?.end();
    counter = null;
  }

  return {
    name: oneInstance ? 'conveyor (one instance)' : 'conveyor',
    version: PACKAGE.version,
    hasBatchEnqueue: true, // conveyor.jobs.enqueueMany: one INSERT statement per call
    settings: {
      'instances': oneInstance
        ? 'one Conveyor instance at a time in the benchmark process, as `npm start` runs the API and the pool together: a producer (WORKER_ENABLED=false) created in reset() enqueues until startWorker(), which stops it and starts an instance with WORKER_ENABLED=true that takes the enqueues from then on (the latency test enqueues through it); startupMs includes stopping the producer'
        : 'two Conveyor instances in the benchmark process, like an API instance and a worker instance: a producer (WORKER_ENABLED=false) created and started in reset(), which enqueues; a worker (WORKER_ENABLED=true) created and started in startWorker(), stopped in stop()',
      'WORKER_CONCURRENCY': 'concurrency (default 10): slots of the worker instance; it claims its free slots plus WORKER_PREFETCH (left unset: sized automatically from recent run and claim times, at most 10 per slot and at least up to 20) in one statement',
      'RETRY_INITIAL_DELAY_MS / RETRY_JITTER': '0 / 0 (defaults 1000 ms / 0.1): the smallest backoff, set for every test but only used by the retry test',
      'maxAttempts (retry test only)': '2, per job at enqueue (default JOB_MAX_ATTEMPTS 3)',
      'jobs': `one registered handler type "${TYPE}", owner "${OWNER}", actor "${OWNER}"; payload stored as jsonb; the handler returns null`,
      'enqueue': 'batch 0: one awaited conveyor.jobs.enqueue per job; otherwise conveyor.jobs.enqueueMany per chunk of `batch`',
      'database': `"${DATABASE}" on the same server, dropped and recreated in reset(); Conveyor applies its migrations when an instance is created; never analyzed by the adapter`,
      'durability': 'defaults: completions and failures commit durably (WORKER_ASYNC_OUTCOMES=false); claims, progress and heartbeats commit asynchronously (WORKER_DURABLE_COMMITS=false, synchronous_commit=off on the worker connections)',
      'HOST / PORT': '127.0.0.1 / 0 (defaults 127.0.0.1 / 4000): each instance serves its GraphQL API on a free port, unused here',
      'LOG_LEVEL / logger': `${LOG_LEVEL} (default info, one line per job), through Conveyor's own createLogger, to stderr instead of stdout`,
      'pending()': "SELECT count(*) FROM processing_jobs WHERE status <> 'COMPLETED', on a 1-connection pool of the adapter's",
      'everything else': 'default (DATABASE_POOL_SIZE 20, WORKER_POLL_INTERVAL_MS 1000 plus LISTEN/NOTIFY wake-ups, heartbeats every 15 s, no Redis, JWT_SECRET unset = development secret on loopback)',
    },

    async reset() {
      await stopAll();
      // pg's pool.end() resolves before its connections' sockets have closed: wait (up to 5 s) for
      // them to go, so that the DROP below does not terminate one still closing (harmless, but the
      // pool logs it as "idle database connection failed").
      for (let waited = 0; waited < 5000; waited += 20) {
        const { rows } = await admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [DATABASE]);
        if (rows[0].n === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await admin.query(`DROP DATABASE IF EXISTS ${quote(DATABASE)} WITH (FORCE)`);
      await admin.query(`CREATE DATABASE ${quote(DATABASE)}`);
      producer = await createConveyor({
        config: loadConfig({ ...environment, WORKER_ENABLED: 'false' }),
        handlers: [handler],
        logger,
      });
      await producer.start();
      counter = new pg.Pool({ connectionString: databaseUrl, max: 1 });
      counter.on('error', () => {});
    },

    async enqueue(n, { batch = 0, payload, maxAttempts } = {}) {
      // One instance: the producer is gone once the pool runs, and the enqueues go to that instance.
      const instance = oneInstance ? (producer ?? worker) : producer;
      if (!instance) throw new Error('enqueue() before reset(), or after stop() in the one-instance shape');
      const input = (i) => ({ type: TYPE, owner: OWNER, payload: payload(i), ...(maxAttempts ? { maxAttempts } : {}) });
      if (!batch) {
        for (let i = 0; i < n; i++) await instance.jobs.enqueue(input(i), OWNER);
        return;
      }
      for (let i = 0; i < n; i += batch) {
        const inputs = [];
        for (let j = i; j < Math.min(n, i + batch); j++) inputs.push(input(j));
        await instance.jobs.enqueueMany(inputs, OWNER);
      }
    },

    async startWorker(concurrency, fn) {
      handle = fn;
      if (oneInstance) {
        const stopping = producer;
        producer = null;
        await stopping?.stop();
      }
      worker = await createConveyor({
        config: loadConfig({ ...environment, WORKER_ENABLED: 'true', WORKER_CONCURRENCY: String(concurrency) }),
        handlers: [handler],
        logger,
      });
      await worker.start();
    },

    async pending() {
      const { rows } = await counter.query("SELECT count(*)::int AS n FROM processing_jobs WHERE status <> 'COMPLETED'");
      return rows[0].n;
    },

    async stop() {
      await worker?.stop(); // drains the worker pool, closes its connections
      worker = null;
    },

    async close() {
      await stopAll();
      await admin.end();
    },
  };
}
