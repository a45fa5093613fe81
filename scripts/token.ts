// Prints a development token: npm run token -- --sub alice --role operator [--expires 12h]
// Signed with JWT_SECRET (or the development secret when unset); never use it in production.
// Tokens live at most JWT_MAX_LIFETIME_SECONDS (24 h by default).
import { parseArgs } from "node:util";
import { decodeJwt } from "jose";
import { ConfigError, loadConfig } from "../src/config.js";
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
let config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(2);
}
if (!config.auth.secret) {
  console.error("No JWT_SECRET: tokens for a JWKS setup come from your identity provider");
  process.exit(2);
}
const token = await signToken(config.auth.secret, { id: values.sub!, role: values.role }, {
  expiresIn: values.expires,
  issuer: config.auth.issuer,
  audience: config.auth.audience,
});
// The server refuses tokens that live longer than JWT_MAX_LIFETIME_SECONDS; better to say so here.
const { exp, iat } = decodeJwt(token);
if (exp! - iat! > config.auth.maxLifetimeSeconds) {
  console.error(`--expires ${values.expires} exceeds JWT_MAX_LIFETIME_SECONDS (${config.auth.maxLifetimeSeconds} s): the server would refuse this token`);
  process.exit(2);
}
console.log(token);
