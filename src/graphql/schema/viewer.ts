import type { Viewer } from "../auth.js";
import { builder } from "../builder.js";
import { RoleEnum } from "./scalars.js";

const ViewerType = builder.objectRef<Viewer>("Viewer").implement({
  description: "The authenticated caller.",
  fields: (t) => ({
    id: t.exposeID("id"),
    role: t.field({ type: RoleEnum, resolve: (viewer) => viewer.role }),
  }),
});

builder.queryField("me", (t) =>
  t.field({
    type: ViewerType,
    nullable: true,
    description: "The caller, or null without a token.",
    resolve: (_root, _args, context) => context.viewer,
  }),
);
