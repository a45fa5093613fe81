import { expect } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";

/** loadConfig's error message for `environment`, or null when it accepts it. */
export function configProblem(environment: Record<string, string>): string | null {
  try {
    loadConfig(environment);
    return null;
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
}
