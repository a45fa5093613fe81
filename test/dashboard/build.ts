import { fileURLToPath } from "node:url";
import { build } from "vite";

const CONFIG = fileURLToPath(new URL("../../dashboard/vite.config.ts", import.meta.url));

/** Builds dashboard/ as `npm run build:dashboard` does, into `outDir`: the tests never serve a stale build. */
export async function buildDashboard(outDir: string): Promise<void> {
  await build({ configFile: CONFIG, logLevel: "warn", build: { outDir, emptyOutDir: true } });
}
