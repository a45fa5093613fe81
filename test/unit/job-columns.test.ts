import { readFileSync } from "node:fs";
import { buildSchema, type GraphQLObjectType } from "graphql";
import { describe, expect, it } from "vitest";
import { JOB_FIELD_COLUMNS } from "../../src/graphql/job-columns.js";

describe("the columns of Job's fields", () => {
  it("names the columns of every field of Job, so that every page of jobs reads only what it asks for", () => {
    const schema = buildSchema(readFileSync(new URL("../../schema.graphql", import.meta.url), "utf8"));
    const fields = Object.keys((schema.getType("Job") as GraphQLObjectType).getFields()).sort();
    expect(Object.keys(JOB_FIELD_COLUMNS).filter((field) => field !== "__typename").sort()).toEqual(fields);
  });
});
