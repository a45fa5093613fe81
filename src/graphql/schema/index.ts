import { lexicographicSortSchema } from "graphql";
import { builder } from "../builder.js";
import "./scalars.js";
import "./viewer.js";
import "./job.js";
import "./job-mutations.js";
import "./job-subscriptions.js";
import "./job-update-batches.js";
import "./assessment.js";
import "./validation-run.js";
import "./queue-health.js";

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});

/** The executable schema, with types and fields sorted so that schema.graphql diffs stay readable. */
export const schema = lexicographicSortSchema(builder.toSchema());
