// One session as a thread: each turn (a trace, oldest first) with what the user said and the final
// answer, and a link to its trace. GET /api/otel/sessions/{id}, page after page ("Later turns").
"use strict";

(function () {
  const { json, el } = window.plughost;
  const fmt = window.otelFormat;
  const sessionId = document.getElementById("session").dataset.sessionId;
  const thread = document.getElementById("thread");
  const more = document.getElementById("more");
  const base = "/api/otel/sessions/" + encodeURIComponent(sessionId);
  let nextToken = null;
  let turns = 0;

  function said(role, label, text) {
    return el("div", { className: "chat-message role-" + role },
      el("div", { className: "chat-role" }, label),
      text ? el("div", { className: "chat-text" }, text) : el("div", { className: "said" }, "—"));
  }

  function turn(trace) {
    turns += 1;
    const tokens = (trace.input_tokens || 0) + (trace.output_tokens || 0);
    return el("article", { className: "turn" + (trace.error_count ? " has-error" : ""), dataset: { traceId: trace.trace_id } },
      el("div", { className: "turn-head" },
        el("span", { className: "turn-number" }, "Turn " + turns),
        el("span", { className: "mono" }, fmt.time(trace.start_time_unix_nano)),
        el("span", {}, fmt.duration(trace.duration_ms)),
        tokens ? el("span", {}, fmt.count(tokens, "token")) : null,
        trace.cost_usd !== null && trace.cost_usd !== undefined ? el("span", { className: "cost", title: "US dollars" }, fmt.cost(trace.cost_usd)) : null,
        trace.error_count ? el("span", { className: "badge error" }, fmt.count(trace.error_count, "error")) : null,
        el("a", { href: fmt.traceUrl(trace.trace_id), className: "turn-trace" }, (trace.root_name || "trace") + " →")),
      said("user", "User", trace.input),
      said("assistant", "Answer", trace.output));
  }

  function drawFacts(session) {
    document.getElementById("session-title").textContent = "Session " + session.session_id;
    const tokens = (session.input_tokens || 0) + (session.output_tokens || 0);
    document.getElementById("session-facts").replaceChildren(...[
      el("span", {}, fmt.count(session.trace_count, "trace")),
      el("span", {}, fmt.time(session.first_time_unix_nano), " – ", fmt.time(session.last_time_unix_nano)),
      el("span", {}, fmt.duration(session.duration_ms)),
      el("span", {}, fmt.count(session.llm_calls, "LLM call")),
      tokens ? el("span", {}, fmt.count(tokens, "token")) : null,
      session.cost_usd !== null && session.cost_usd !== undefined ? el("span", { className: "cost", title: "US dollars, of the priced calls" }, fmt.cost(session.cost_usd)) : null,
      session.error_count ? el("span", { className: "badge error" }, fmt.count(session.error_count, "error")) : el("span", { className: "badge ok" }, "no errors"),
      el("a", { href: fmt.url("/traces", { session: session.session_id }) }, "its traces in the list"),
    ].filter(Boolean));
  }

  async function load() {
    try {
      const page = await json(base + "?" + new URLSearchParams(nextToken ? { page_token: nextToken } : {}));
      if (!turns) drawFacts(page);
      thread.append(...page.turns.map(turn));
      nextToken = page.next_page_token;
    } catch (error) {
      const line = document.getElementById("session-error");
      line.textContent = error.message;
      line.hidden = false;
      nextToken = null;
    }
    more.hidden = !nextToken;
  }

  document.getElementById("back-to-sessions").href = fmt.url("/sessions");
  more.addEventListener("click", load);
  load();
})();
