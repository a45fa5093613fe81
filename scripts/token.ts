// Prints a development token: npm run token -- --sub alice --role operator [--expires 12h]
// Signed with JWT_SECRET (or the development secret when unset); never use it in production.
import { parseArgs } from "node:util";
import { loadConfig } from "../src/config.js";
import { signToken } from "../src/graphql/auth.js";

const { values } = parseArgs({
  options: {
    sub: { type: "string", default: "alice" },
    role: { type: "string", default: "user" },
    expires: { type: "string", default: "12h" },
  },
});
if (values.role !== "user" && values.role !== "operator") {
  console.error("--role must be user or operator");
  process.exit(2);
}
const config = loadConfig();
if (!config.auth.secret) {
  console.error("No JWT_SECRET: tokens for a JWKS setup come from your identity provider");
  process.exit(2);
}
const token = await signToken(config.auth.secret, { id: values.sub!, role: values.role }, {
  expiresIn: values.expires,
  issuer: config.auth.issuer,
  audience: config.auth.audience,
});
console.log(token);
