import { createRequire } from "node:module";
import { configDefaults, defineConfig } from "vitest/config";

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // graphql 16 ships CommonJS and ESM copies; Node loads the CommonJS one for every dependency
    // (Pothos, yoga), so our own imports must get that same copy or types stop matching.
    alias: [{ find: /^graphql$/, replacement: require.resolve("graphql") }],
  },
  test: {
    // The dashboard's browser tests run after the rest, alone: headless Chromium takes both cores
    // for a while, and the process tests' samplers must not be starved by it.
    projects: [
      { extends: true, test: { name: "service", include: ["test/**/*.test.ts"], exclude: [...configDefaults.exclude, "test/dashboard/**"] } },
      { extends: true, test: { name: "dashboard", include: ["test/dashboard/**/*.test.ts"], sequence: { groupOrder: 1 } } },
    ],
    globalSetup: ["test/support/global-setup.ts"],
    // Each test file gets its own database cloned from a migrated template, so files run in parallel.
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
  },
});
