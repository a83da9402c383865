// The npm `graphql-ws` client, as Apollo's GraphQLWsLink and urql use it, against careloop.
//
//   node live.mjs <ws url> <bearer token> <operation> [variables as JSON]
//
// Prints one JSON object per line on stdout:
//   {"event": "connected"}                       after connection_ack
//   {"event": "next", "payload": {...}}          each result
//   {"event": "error", "error": ...}             the operation failed (GraphQL errors, or the socket closed)
//   {"event": "complete"}                        the server completed the operation
//   {"event": "closed", "code": 4403, "reason": "Forbidden"}
// and exits once the operation has ended, or when stdin closes (the test is done with it).
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, token, query, variables] = process.argv.slice(2);
const emit = (line) => process.stdout.write(JSON.stringify(line) + "\n");

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: token ? { authorization: `Bearer ${token}` } : {},
  lazy: false,
  retryAttempts: 0,
  on: {
    connected: () => emit({ event: "connected" }),
    closed: (event) => emit({ event: "closed", code: event?.code ?? null, reason: event?.reason ?? null }),
    error: (error) => emit({ event: "socket-error", message: String(error?.message ?? error) }),
  },
});

const finish = async (status) => {
  await client.dispose();
  // let the "closed" line out before leaving
  setTimeout(() => process.exit(status), 50);
};

client.subscribe(
  { query, variables: variables ? JSON.parse(variables) : {} },
  {
    next: (payload) => emit({ event: "next", payload }),
    error: (error) => {
      const described = Array.isArray(error)
        ? error
        : { code: error?.code ?? null, reason: error?.reason ?? null, message: error?.message ?? null };
      emit({ event: "error", error: described });
      finish(0);
    },
    complete: () => {
      emit({ event: "complete" });
      finish(0);
    },
  },
);

process.stdin.on("end", () => finish(0));
process.stdin.resume();
