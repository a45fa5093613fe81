import pg from "pg";
import type { Logger } from "../logger.js";

export const JOBS_CHANNEL = "conveyor_jobs";
export const CANCEL_CHANNEL = "conveyor_cancel";

/**
 * A dedicated connection that LISTENs on the engine's channels. It reconnects after a failure and
 * then calls `onReconnect`, since notifications sent while it was away are lost for good;
 * `onConnected` hears the backend pid of each connection once it listens.
 */
export class NotificationListener {
  private client: pg.Client | null = null;
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectDelayMs = 100;

  constructor(
    private readonly connectionString: string,
    private readonly channels: string[],
    private readonly onNotification: (channel: string, payload: string) => void,
    private readonly logger: Logger,
    private readonly onReconnect: () => void = () => {},
    private readonly onConnected: (pid: number) => void = () => {},
  ) {}

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    // Keepalives: a connection cut without a reset (a partition, a NAT that forgot it) otherwise
    // stays silent for good, and every notification after it is lost without an error.
    const client = new pg.Client({ connectionString: this.connectionString, application_name: "conveyor-listener", keepAlive: true, keepAliveInitialDelayMillis: 30_000 });
    client.on("notification", (message) => this.onNotification(message.channel, message.payload ?? ""));
    // Only the connection in use reconnects: a failed attempt's, ended below, must not end its successor.
    client.on("error", (error) => {
      if (client !== this.client) return;
      this.logger.warn({ err: error }, "notification connection failed; reconnecting");
      this.scheduleReconnect();
    });
    client.on("end", () => {
      if (client === this.client) this.scheduleReconnect();
    });
    try {
      await client.connect();
      for (const channel of this.channels) await client.query(`LISTEN ${channel}`);
    } catch (error) {
      // Connected but not listening (a LISTEN refused, the server gone in between): not kept, not leaked.
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.reconnectDelayMs = 100;
    this.onConnected((client as unknown as { processID: number }).processID);
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const previous = this.client;
    this.client = null;
    previous?.removeAllListeners();
    previous?.end().catch(() => undefined);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect().then(
        () => this.onReconnect(),
        (error) => {
          this.logger.warn({ err: error, retryInMs: this.reconnectDelayMs }, "notification connection could not reconnect");
          this.reconnectDelayMs = Math.min(this.reconnectDelayMs * 2, 10_000);
          this.scheduleReconnect();
        },
      );
    }, this.reconnectDelayMs);
    this.reconnectTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    const client = this.client;
    this.client = null;
    if (client) {
      client.removeAllListeners();
      client.on("error", () => {});
      await client.end().catch(() => undefined);
    }
  }
}
