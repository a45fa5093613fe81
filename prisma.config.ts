import { defineConfig } from "prisma/config";

// DATABASE_URL is only needed by Prisma CLI commands that talk to a database (migrate deploy,
// studio). Conveyor itself applies prisma/migrations at start-up, see src/db/migrate.ts.
export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: { url: process.env.DATABASE_URL ?? "postgresql://localhost:5432/conveyor" },
});
