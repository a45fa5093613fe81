// Builds the operator dashboard (dashboard/) into dist/dashboard, which the server serves at
// /dashboard. `--if-missing` builds only when no build is there (npm start).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const built = `${root}dist/dashboard/index.html`;

if (process.argv.includes("--if-missing") && existsSync(built)) process.exit(0);
// Vite is a development dependency: an install with --omit=dev serves a dashboard built beforehand.
let build;
try {
  ({ build } = await import("vite"));
} catch {
  console.error("The dashboard is not built and Vite is not installed: run `npm ci` then `npm run build:dashboard`.");
  process.exit(process.argv.includes("--if-missing") ? 0 : 1);
}
await build({ configFile: `${root}dashboard/vite.config.ts`, logLevel: "warn" });
console.log("dashboard built into dist/dashboard");
