// The yardstick of bench/api-throughput.ts: a bare graphql-yoga server answering `{ hello }`, with
// yoga's defaults, in a process of its own.
import { createServer } from "node:http";
import { createSchema, createYoga } from "graphql-yoga";

const yoga = createYoga({
  schema: createSchema({ typeDefs: "type Query { hello: String }", resolvers: { Query: { hello: () => "world" } } }),
  logging: false,
});
const server = createServer(yoga);
server.listen(0, "127.0.0.1", () => {
  const address = server.address() as { port: number };
  console.log(`listening http://127.0.0.1:${address.port}`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
