// Headless Chromium (Debian's package, driven by playwright-core) against careloop, for tests/app/test_browser.py.
//
//   node browser.mjs <chromium executable> <job as JSON>
//
// Jobs:
//   {"kind": "page", "url": "..."}                   load a page (a portal), wait for body[data-done],
//                                                     report the text of #result (a portal's sign-in and
//                                                     paging, or its form upload and <img> of the file)
//   {"kind": "graphiql", "url": ".../graphql", "email": "...", "password": "..."}
//                                                     load GraphiQL, run a login in it, then `me` with the
//                                                     header it prefilled
// Every request that would leave 127.0.0.1/localhost is aborted (no CDN can answer) and listed.
// Prints one JSON object on stdout: {result, requests, failed (requests the browser gave up on, with its
// reason: a CORS refusal, an image it would not load), offsite, consoleErrors, pageErrors, cspViolations,
// introspected (whether a page's introspection query got the schema)}, and
// {error, text} (the page's text) when the job could not be done; a job naming "screenshot" (a .png path)
// then leaves a picture of the page there.
import { chromium } from "playwright-core";

const [executablePath, jobText] = process.argv.slice(2);
const job = JSON.parse(jobText);
const LOCAL = new Set(["127.0.0.1", "localhost", "[::1]"]);

const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
const report = { result: null, requests: [], failed: [], offsite: [], consoleErrors: [], pageErrors: [],
  cspViolations: [] };
try {
  const context = await browser.newContext();
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.protocol === "data:" || LOCAL.has(url.hostname)) return route.continue();
    report.offsite.push(url.href);
    return route.abort("internetdisconnected");
  });
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (event) =>
      window.__csp.push({ directive: event.violatedDirective, blocked: event.blockedURI }),
    );
  });
  const page = await context.newPage();
  page.on("request", (request) => report.requests.push(request.url()));
  page.on("requestfailed", (request) =>
    report.failed.push({ url: request.url(), method: request.method(), failure: request.failure()?.errorText }),
  );
  page.on("console", (message) => {
    if (message.type() === "error") report.consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => report.pageErrors.push(String(error)));
  // Whether the schema could be introspected (GraphiQL's docs, completion and validation need it).
  page.on("response", async (response) => {
    if (!(response.request().postData() || "").includes("__schema")) return;
    const body = await response.json().catch(() => null);
    report.introspected = Boolean(body && body.data && body.data.__schema);
  });

  try {
    if (job.kind === "page") {
      await page.goto(job.url);
      await page.waitForSelector("body[data-done]", { timeout: 30000 });
      report.result = JSON.parse(await page.textContent("#result"));
    } else if (job.kind === "graphiql") {
      report.result = await graphiql(page, job);
    } else {
      throw new Error(`unknown job ${job.kind}`);
    }
  } catch (error) {
    // what the page showed, for the test's failure message
    report.error = String(error);
    report.text = await page.evaluate(() => document.body.innerText.slice(0, 3000)).catch(() => null);
    if (job.screenshot) await page.screenshot({ path: job.screenshot }).catch(() => null);
  }
  report.cspViolations = await page.evaluate(() => window.__csp);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + "\n");

// GraphiQL 3 edits with CodeMirror 5: each editor's element carries its CodeMirror instance.
function editorValue(page, selector) {
  return page.evaluate((s) => document.querySelector(`${s} .CodeMirror`).CodeMirror.getValue(), selector);
}

async function run(page, query) {
  await page.evaluate((q) => document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror.setValue(q), query);
  // GraphiQL parses the editor's text after a debounce and keeps the result (the document, its operation name) on
  // the editor: wait until that is the new text, or the click sends the old operation's name with the new
  // document ("no operation named Login"). Then, with several operations the button opens a menu: wait for one.
  await page.waitForFunction(
    (q) => document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror.documentAST?.loc?.source?.body === q,
    query, { timeout: 10000 },
  );
  await page.waitForSelector(".graphiql-execute-button:not([aria-haspopup])", { timeout: 10000 });
  await page.click(".graphiql-execute-button");
}

async function graphiql(page, { url, email, password }) {
  await page.goto(url);
  await page.waitForSelector(".graphiql-query-editor .CodeMirror", { timeout: 30000 });
  const firstScreen = await editorValue(page, ".graphiql-query-editor");

  await run(page, `mutation { login(email: ${JSON.stringify(email)}, password: ${JSON.stringify(password)}) { token } }`);
  // The Headers editor (one of the tool editors under the query) receives the token.
  const headersEditor = () =>
    Array.from(document.querySelectorAll(".graphiql-editor-tool .CodeMirror"))
      .map((element) => element.CodeMirror.getValue())
      .find((text) => text.includes("Bearer "));
  await page.waitForFunction(headersEditor, null, { timeout: 15000 });
  const headers = await page.evaluate(headersEditor);

  await run(page, "query { me { email } }");
  await page.waitForFunction(
    (expected) => document.querySelector(".graphiql-response .CodeMirror")?.CodeMirror.getValue().includes(expected),
    email, { timeout: 15000 },
  );
  const response = await editorValue(page, ".graphiql-response");
  return { firstScreen, headers, response };
}
