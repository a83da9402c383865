// careloop's GraphiQL page (development only). React, ReactDOM and GraphiQL come from this server
// (/graphql/assets/), never from a CDN: hospital networks often have no internet. This file is a script of
// its own, not inline, so that the page's Content-Security-Policy can allow scripts from 'self' only.
(function () {
  "use strict";

  const FIRST_SCREEN = `# careloop GraphiQL (development only: production serves no IDE).
#
# Sign in first:
#  1. Put a demo account in "Login" below and run it (the ▶ button, then
#     pick "Login"): e.g. nurse@demo.careloop.test and the password that
#     \`make run\` printed. Patients sign in with patientLogin instead.
#  2. The token then goes into the Headers editor (bottom panel) for you:
#       {"Authorization": "Bearer <token>"}
#     Every request of this tab sends it. You can also paste it yourself.
#     A token lasts 12 hours; the logout mutation revokes it.
#  3. Run "Me" or "Patients", or write your own (Ctrl-Space completes,
#     the Docs panel on the left describes every type and field).

mutation Login {
  login(email: "nurse@demo.careloop.test", password: "<password>") {
    token
    expiresAt
  }
}

query Me {
  me { id kind name roles }
}

query Patients($after: String) {
  patients(first: 10, after: $after) {
    edges { node { id fullName } }
    pageInfo { hasNextPage endCursor }
  }
}
`;

  const url = window.location.href.split(/[?#]/)[0];
  const subscriptionUrl = url.replace(/^http/, "ws");
  // careloop serves no @defer/@stream: plain JSON answers, which the login watch below can read.
  const graphqlFetcher = GraphiQL.createFetcher({ url, subscriptionUrl, enableIncrementalDelivery: false });

  // The Headers editor's text, and how to replace it: set by the component below.
  let currentHeaders = "";
  let showHeaders = function () {};

  function tokenOf(result) {
    const data = result && typeof result === "object" ? result.data : null;
    const payload = data && (data.login || data.patientLogin);
    return payload && typeof payload.token === "string" ? payload.token : null;
  }

  function withAuthorization(headersText, token) {
    let headers = {};
    try {
      const parsed = JSON.parse(headersText || "{}");
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) headers = parsed;
    } catch (error) {
      // not JSON yet: replaced by a header object that works
    }
    for (const name of Object.keys(headers)) {
      if (name.toLowerCase() === "authorization") delete headers[name];
    }
    headers.Authorization = "Bearer " + token;
    return JSON.stringify(headers, null, 2);
  }

  // A login's answer puts its token into the Headers editor: the next request is signed in.
  async function fetcher(params, options) {
    const result = await graphqlFetcher(params, options);
    const token = tokenOf(result);
    if (token) showHeaders(withAuthorization(currentHeaders, token));
    return result;
  }

  function CareloopGraphiQL() {
    const [headers, setHeaders] = React.useState(undefined);
    showHeaders = function (text) {
      currentHeaders = text;
      setHeaders(text);
    };
    return React.createElement(GraphiQL, {
      fetcher,
      defaultQuery: FIRST_SCREEN,
      headers,
      onEditHeaders: function (text) {
        currentHeaders = text;
      },
      defaultEditorToolsVisibility: "headers",
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false, // a token does not outlive the tab unless the user turns this on
      inputValueDeprecation: true,
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(CareloopGraphiQL));
})();
