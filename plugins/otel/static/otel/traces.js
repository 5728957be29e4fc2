// The trace list: filters, pages (next_page_token) and one row per trace.
"use strict";

(function () {
  const { json, el } = window.plughost;
  const fmt = window.otelFormat;
  const form = document.getElementById("filters");
  const body = document.querySelector("#traces tbody");
  const errorLine = document.getElementById("list-error");
  const previous = document.getElementById("previous");
  const next = document.getElementById("next");
  const tokens = [null]; // page_token of each page shown so far; the last is the current page's
  let nextToken = null;

  function query(pageToken) {
    const params = new URLSearchParams();
    for (const [key, value] of new FormData(form)) {
      if (value === "") continue;
      params.set(key, key.startsWith("start_") ? new Date(value).toISOString() : value);
    }
    params.set("limit", "50");
    if (pageToken) params.set("page_token", pageToken);
    return params;
  }

  function row(trace) {
    const tokens = (trace.input_tokens || 0) + (trace.output_tokens || 0);
    return el("tr", { className: trace.error_count ? "has-error" : "" },
      el("td", {}, el("a", { href: "/traces/" + encodeURIComponent(trace.trace_id), className: "trace-link" }, trace.root_name || "(no root span)")),
      el("td", {}, trace.service_name || ""),
      el("td", {}, trace.project || ""),
      el("td", { className: "mono" }, fmt.time(trace.start_time_unix_nano)),
      el("td", { className: "num" }, fmt.duration(trace.duration_ms)),
      el("td", { className: "num" }, fmt.number(trace.span_count)),
      el("td", { className: "num" }, trace.error_count ? el("span", { className: "badge error" }, trace.error_count) : "0"),
      el("td", { className: "num" }, tokens ? fmt.number(tokens) : ""),
    );
  }

  async function load() {
    errorLine.hidden = true;
    try {
      const page = await json("/api/otel/traces?" + query(tokens[tokens.length - 1]));
      body.replaceChildren(...page.traces.map(row));
      const filtered = tokens.length > 1 || [...new FormData(form).values()].some((value) => value !== "");
      if (!page.traces.length) body.append(el("tr", {}, el("td", { colSpan: 8, className: "muted empty" }, filtered ? "No traces match." : window.otelEmpty())));
      nextToken = page.next_page_token;
    } catch (error) {
      errorLine.textContent = error.message;
      errorLine.hidden = false;
      nextToken = null;
    }
    next.disabled = !nextToken;
    previous.disabled = tokens.length < 2;
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); tokens.length = 1; load(); });
  next.addEventListener("click", () => { if (nextToken) { tokens.push(nextToken); load(); } });
  previous.addEventListener("click", () => { if (tokens.length > 1) { tokens.pop(); load(); } });
  load();
})();
