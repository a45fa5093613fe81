// The engine's LISTEN connection: one in use at a time, none left behind.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NotificationListener } from "../../src/jobs/notification-listener.js";
import { createLogger } from "../../src/logger.js";
import { eventually } from "../support/conveyor.js";
import { createTestDatabase } from "../support/database.js";

describe("NotificationListener", () => {
  let database: { url: string; drop(): Promise<void> };
  let admin: pg.Client;
  const listeners = async (channel: string) =>
    Number((await admin.query(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'conveyor-listener' AND query LIKE $1`, [`%${channel}%`])).rows[0].n);

  beforeAll(async () => {
    database = await createTestDatabase();
    admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
    await database?.drop();
  });

  it("ends a connection whose LISTEN failed, rather than leaving it open", async () => {
    // A channel name PostgreSQL refuses: the connection opens, then its LISTEN fails.
    const listener = new NotificationListener(database.url, ["refused channel"], () => {}, createLogger("silent"));
    await expect(listener.start()).rejects.toThrow();
    await eventually(async () => ((await listeners("refused channel")) === 0 ? true : undefined));
    await listener.close();
  });

  it("keeps no connection when closed while it was connecting", async () => {
    const listener = new NotificationListener(database.url, ["conveyor_closing"], () => {}, createLogger("silent"));
    const starting = listener.start();
    await listener.close();
    await starting;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await listeners("conveyor_closing")).toBe(0);
  });

  it("hears notifications, and listens again after its connection is ended", async () => {
    const heard: string[] = [];
    let reconnected = 0;
    const listener = new NotificationListener(database.url, ["conveyor_heard"], (_channel, payload) => heard.push(payload), createLogger("silent"), () => reconnected++);
    try {
      await listener.start();
      await admin.query(`NOTIFY conveyor_heard, 'one'`);
      await eventually(() => heard.includes("one"));
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'conveyor-listener' AND query LIKE '%conveyor_heard%'`);
      await eventually(() => reconnected === 1);
      await admin.query(`NOTIFY conveyor_heard, 'two'`);
      await eventually(() => heard.includes("two"));
      expect(await listeners("conveyor_heard")).toBe(1);
    } finally {
      await listener.close();
    }
  });
});
