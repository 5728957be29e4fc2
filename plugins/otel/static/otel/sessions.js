// The sessions list: one row a session, latest first (click "Last" for oldest first); its state (sort,
// page) is the URL, as on the trace list.
"use strict";

(function () {
  const { json, el } = window.plughost;
  const fmt = window.otelFormat;
  const body = document.querySelector("#sessions tbody");
  const errorLine = document.getElementById("sessions-error");
  const header = document.querySelector("#sessions th[data-sort]");
  const { current, go, apiQuery, pager, start } = window.otelUrlState("/sessions", load);
  const showPager = pager(document.getElementById("previous"), document.getElementById("next"));
  let request = 0;

  function row(session) {
    const tokens = (session.input_tokens || 0) + (session.output_tokens || 0);
    return el("tr", { className: session.error_count ? "has-error" : "" },
      el("td", {}, el("a", { href: fmt.sessionUrl(session.session_id), className: "trace-link session-link" }, session.session_id)),
      el("td", { className: "num" }, fmt.number(session.trace_count)),
      el("td", { className: "mono" }, fmt.time(session.first_time_unix_nano)),
      el("td", { className: "mono" }, fmt.time(session.last_time_unix_nano)),
      el("td", { className: "num" }, fmt.duration(session.duration_ms)),
      el("td", { className: "num" }, fmt.number(session.llm_calls)),
      el("td", { className: "num" }, tokens ? fmt.number(tokens) : ""),
      el("td", { className: "num cost" }, fmt.cost(session.cost_usd)),
      el("td", { className: "num" }, session.error_count ? el("span", { className: "badge error", title: fmt.count(session.error_traces, "trace") + " with errors" }, session.error_count) : "0"),
    );
  }

  async function load(params) {
    const mine = ++request;
    header.setAttribute("aria-sort", params.get("sort") === "last_time" ? "ascending" : "descending");
    errorLine.hidden = true;
    let nextToken = null;
    try {
      const page = await json("/api/otel/sessions?" + apiQuery(params, 50));
      if (mine !== request) return;
      body.replaceChildren(...page.sessions.map(row));
      if (!page.sessions.length) {
        body.append(el("tr", {}, el("td", { colSpan: 9, className: "muted empty" },
          "No sessions yet. A trace joins a session when a span names one: session.id (OpenInference's using_session), gen_ai.conversation.id, langfuse.session.id…")));
      }
      nextToken = page.next_page_token;
    } catch (error) {
      if (mine !== request) return;
      body.replaceChildren();
      errorLine.textContent = error.message;
      errorLine.hidden = false;
    }
    showPager(nextToken);
  }

  header.querySelector("button").addEventListener("click", () => {
    const params = current();
    if (params.get("sort") === "last_time") params.delete("sort");
    else params.set("sort", "last_time");
    params.delete("page_token");
    go(params);
  });
  start();
})();
