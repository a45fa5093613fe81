import { z } from "zod";
import { ruleSetSchema, type RuleSet, type RuleSetDefinition } from "./rule-set-schema.js";
import { billingLines } from "./rule-sets/billing-lines.js";

/** The rule sets Conveyor ships; add a definition file under rule-sets/ and list it here. */
const SHIPPED: RuleSetDefinition[] = [billingLines];

export class RuleSetError extends Error {
  override name = "RuleSetError";
}

/**
 * Validates every definition (at start-up: createConveyor calls this) and returns them by id. A bad
 * definition stops the service with every problem named, rather than failing runs one by one later.
 */
export function loadRuleSets(definitions: RuleSetDefinition[] = SHIPPED): ReadonlyMap<string, RuleSet> {
  const ruleSets = new Map<string, RuleSet>();
  for (const [index, definition] of definitions.entries()) {
    const parsed = ruleSetSchema.safeParse(definition);
    if (!parsed.success) {
      const name = typeof definition?.id === "string" ? definition.id : `#${index}`;
      throw new RuleSetError(`Rule set ${name} is invalid: ${z.prettifyError(parsed.error)}`);
    }
    if (ruleSets.has(parsed.data.id)) throw new RuleSetError(`Rule set ${parsed.data.id} is defined twice`);
    ruleSets.set(parsed.data.id, parsed.data);
  }
  return ruleSets;
}
