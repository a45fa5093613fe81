import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { CONFIG_VARIABLES } from "../../src/config.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** The backticked variable names in the first column of the README's Configuration table. */
function documentedVariables(): Set<string> {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const section = readme.split(/^## /m).find((part) => part.startsWith("Configuration\n"));
  if (!section) throw new Error("README.md has no Configuration section");
  const names = new Set<string>();
  for (const line of section.split("\n")) {
    if (!line.startsWith("|")) continue;
    const firstCell = line.split("|")[1] ?? "";
    for (const match of firstCell.matchAll(/`([A-Z][A-Z0-9_]*)`/g)) names.add(match[1]!);
  }
  return names;
}

function sourceFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) return entry.name === "generated" ? [] : sourceFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

describe("item 5: configuration in one place, all of it documented", () => {
  it("item 5: every variable the schema reads is in the README's table, and the table lists nothing else", () => {
    const documented = documentedVariables();
    const read = new Set<string>(CONFIG_VARIABLES);
    expect([...read].filter((name) => !documented.has(name)), "read but missing from the README's Configuration table").toEqual([]);
    expect([...documented].filter((name) => !read.has(name)), "in the README's table but read by nobody").toEqual([]);
  });

  it("item 5: no code but src/config.ts reads a setting from the environment", () => {
    const offenders: string[] = [];
    for (const file of sourceFiles(join(root, "src"))) {
      if (relative(root, file) === join("src", "config.ts")) continue;
      // A read is `process.env.NAME` or `process.env["NAME"]`; `...process.env` hands the whole
      // environment on to a child process and reads nothing.
      for (const match of readFileSync(file, "utf8").matchAll(/process\.env(?:\.([A-Za-z_]\w*)|\[)/g)) {
        offenders.push(`${relative(root, file)}: process.env${match[1] ? `.${match[1]}` : "[…]"}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it("item 5: a bad value stops start-up naming every bad variable, with exit code 2", async () => {
    const environment: NodeJS.ProcessEnv = { ...process.env, WORKER_CONCURRENCY: "abc", PORT: "99999", NODE_ENV: "development" };
    delete environment.DATABASE_URL;
    const outcome = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(process.execPath, ["--import", "tsx", "src/main.ts"], { cwd: root, env: environment, timeout: 60_000 }, (_error, stdout, stderr) =>
        resolve({ code: child.exitCode, stdout, stderr }),
      );
    });
    expect(outcome.code).toBe(2);
    expect(outcome.stderr).toContain("Invalid configuration");
    expect(outcome.stderr).toMatch(/^\s+PORT: .+$/m);
    expect(outcome.stderr).toMatch(/^\s+WORKER_CONCURRENCY: .+$/m);
    // One message, no stack trace, nothing started.
    expect(outcome.stderr).not.toMatch(/\n\s+at /);
    expect(outcome.stdout).not.toContain("listening");
  });
});
