// The server audits of the npm `graphql-http` package (GraphQL-over-HTTP conformance) against careloop.
//
//   node graphql-http-audits.mjs <http url of /graphql>
//
// Prints one JSON array on stdout, an entry per audit:
//   {"id": "4655", "name": "MUST accept application/json ...", "status": "ok" | "notice" | "warn" | "error",
//    "reason": null | "...", "response": null | {"status": 400, "contentType": "...", "body": "..."}}
// Run by tests/api/test_graphql_over_http.py, which installs graphql-http (pinned) next to this file.
import { serverAudits } from "graphql-http";

const [url] = process.argv.slice(2);
const results = [];
for (const audit of serverAudits({ url })) {
  const result = await audit.fn();
  let response = null;
  if (result.status !== "ok") {
    let body = null;
    try {
      body = (await result.response.text()).slice(0, 1000);
    } catch {
      // the body was read by the audit already
    }
    response = {
      status: result.response.status,
      contentType: result.response.headers.get("content-type"),
      body,
    };
  }
  results.push({ id: audit.id, name: audit.name, status: result.status, reason: result.reason ?? null, response });
}
process.stdout.write(JSON.stringify(results));
