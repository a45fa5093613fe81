// Regenerates everything derived from sources, offline: the Prisma client and Pothos types from
// prisma/schema.prisma, then schema.graphql from the Pothos builder, then the dashboard's typed
// operations (dashboard/src/gql) from schema.graphql and the operations in dashboard/src. The results are committed,
// so installing needs no generate step; CI fails when they are stale.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const run = (command, args, env = {}, cwd = root) =>
  execFileSync(command, args, { cwd, stdio: "inherit", env: { ...process.env, ...env } });

// `prisma generate` only asks the schema engine for its version; the native engine cannot be
// downloaded where only the npm registry is reachable, so a stub answers.
run(process.execPath, ["node_modules/prisma/build/index.js", "generate"], {
  PRISMA_SCHEMA_ENGINE_BINARY: `${root}scripts/prisma-schema-engine-stub.sh`,
  PRISMA_HIDE_UPDATE_MESSAGE: "1",
});
run(process.execPath, ["--import", "tsx", "src/graphql/print-schema.ts"]);
run(process.execPath, [`${root}node_modules/@graphql-codegen/cli/cjs/bin.js`, "--config", "codegen.yml", "--silent"], {}, `${root}dashboard`);
