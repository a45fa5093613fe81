// The server side of bench/subscription-fanout.ts, in a process of its own so that its memory is
// measured alone. Its `ticker` jobs report progress every TICK_MS, with the send time in the stage.
import { createConveyor } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import type { JobHandler } from "../../src/handlers/registry.js";

const ticks = Number(process.env.TICKS ?? 10);
const tickMs = Number(process.env.TICK_MS ?? 500);
const ticker: JobHandler = {
  type: "ticker",
  async run(payload, context) {
    // Jobs started together would otherwise report in lock-step; STAGGER spreads them over a tick.
    const offset = (payload as { offset?: number }).offset ?? 0;
    await new Promise((resolve) => setTimeout(resolve, offset));
    for (let tick = 1; tick <= ticks; tick++) {
      await new Promise((resolve) => setTimeout(resolve, tickMs));
      await context.progress(`sent-${Date.now()}`, Math.round((tick / ticks) * 100));
    }
    return { ticks };
  },
};
const conveyor = await createConveyor({ config: loadConfig(), handlers: [ticker] });
await conveyor.start();
console.log(`listening ${conveyor.url}`);
process.on("SIGTERM", () => void conveyor.stop().then(() => process.exit(0)));
