// The trace list. Its whole state is the page's URL, in the API's own parameter names (the filters,
// attr.<key>, sort, page_token) plus the workspace: Back, reload and a pasted link show the same
// list. Searching, sorting (click a column header) and paging push a new URL; the page reads the
// URL and asks GET /api/otel/traces for it. A scatter plot shows the listed traces' durations.
"use strict";

(function () {
  const { json, el } = window.plughost;
  const fmt = window.otelFormat;
  const form = document.getElementById("filters");
  const body = document.querySelector("#traces tbody");
  const errorLine = document.getElementById("list-error");
  const chips = document.getElementById("attribute-filters");
  const previous = document.getElementById("previous");
  const next = document.getElementById("next");
  const headers = document.querySelectorAll("#traces th[data-sort]");
  const FIELDS = Array.from(form.elements).filter((input) => input.name).map((input) => input.name);
  const DEFAULT_SORT = "-start_time";
  const PAGE = 50;
  const LIST_KEY = "otel.traces.list"; // the last list URL, for the trace view's way back
  const { current, go, apiQuery, pager, start } = window.otelUrlState("/traces", load);
  const showPager = pager(previous, next);
  const scatter = document.getElementById("scatter");
  let listed = [];
  let request = 0;

  // A datetime-local input's value for an ISO 8601 moment (the inputs show local time).
  function localInput(iso) {
    const moment = new Date(iso);
    if (Number.isNaN(moment.getTime())) return "";
    return new Date(moment.getTime() - moment.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
  }

  function fillForm(params) {
    for (const name of FIELDS) {
      const value = params.get(name) || "";
      form.elements[name].value = name.startsWith("start_") && value ? localInput(value) : value;
    }
  }

  // The attr.<key>=<value> filters of the URL, each shown with a button that removes it.
  function drawAttributeFilters(params) {
    const found = Array.from(params).filter(([key]) => key.startsWith("attr."));
    chips.replaceChildren(...found.map(([key, value]) => el("span", { className: "chip attribute-filter" },
      key.slice(5) + " = " + value,
      el("button", { type: "button", className: "remove", title: "Remove this filter", "aria-label": "Remove " + key,
        onclick: () => { const params = current(); params.delete(key); params.delete("page_token"); go(params); } }, "×"))));
    chips.hidden = !found.length;
  }

  function drawSort(params) {
    const sort = params.get("sort") || DEFAULT_SORT;
    for (const header of headers) {
      const key = header.dataset.sort;
      header.setAttribute("aria-sort", sort === key ? "ascending" : sort === "-" + key ? "descending" : "none");
    }
  }

  function row(trace) {
    const tokens = (trace.input_tokens || 0) + (trace.output_tokens || 0);
    return el("tr", { className: trace.error_count ? "has-error" : "" },
      el("td", {},
        el("a", { href: fmt.traceUrl(trace.trace_id), className: "trace-link" }, trace.root_name || "(no root span)"),
        trace.session_id ? el("a", { href: fmt.sessionUrl(trace.session_id), className: "chip session-chip", title: "Session " + trace.session_id }, "session") : null),
      el("td", {}, trace.service_name || ""),
      el("td", {}, trace.project || ""),
      el("td", { className: "mono" }, fmt.time(trace.start_time_unix_nano)),
      el("td", { className: "num" }, fmt.duration(trace.duration_ms)),
      el("td", { className: "num" }, fmt.number(trace.span_count)),
      el("td", { className: "num" }, trace.error_count ? el("span", { className: "badge error" }, trace.error_count) : "0"),
      el("td", { className: "num" }, trace.llm_calls ? fmt.number(tokens) : "—"),
      el("td", { className: "num cost" }, fmt.cost(trace.cost_usd)),
    );
  }

  async function load(params) {
    const mine = ++request;
    fillForm(params);
    drawAttributeFilters(params);
    drawSort(params);
    sessionStorage.setItem(LIST_KEY, "/traces?" + params);
    errorLine.hidden = true;
    let nextToken = null;
    try {
      const page = await json("/api/otel/traces?" + apiQuery(params, PAGE));
      if (mine !== request) return;
      body.replaceChildren(...page.traces.map(row));
      const filtered = [...params.keys()].some((key) => key !== "workspace" && key !== "sort");
      if (!page.traces.length) body.append(el("tr", {}, el("td", { colSpan: 9, className: "muted empty" }, filtered ? "No traces match." : window.otelEmpty())));
      document.getElementById("scatter-box").hidden = !page.traces.length; // shown first: it is drawn to its width
      listed = page.traces;
      if (listed.length) window.otelScatter.draw(scatter, listed);
      nextToken = page.next_page_token;
    } catch (error) {
      if (mine !== request) return;
      body.replaceChildren();
      document.getElementById("scatter-box").hidden = true;
      errorLine.textContent = error.message;
      errorLine.hidden = false;
    }
    showPager(nextToken);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [key, value] of new FormData(form)) {
      if (value !== "") params.set(key, key.startsWith("start_") ? new Date(value).toISOString() : value);
    }
    for (const [key, value] of current()) {
      if (key.startsWith("attr.") || key === "sort") params.append(key, value);
    }
    go(params);
  });
  document.getElementById("clear-filters").addEventListener("click", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    if (current().has("sort")) params.set("sort", current().get("sort"));
    go(params);
  });
  for (const header of headers) {
    header.querySelector("button").addEventListener("click", () => {
      const key = header.dataset.sort;
      const params = current();
      const sort = (params.get("sort") || DEFAULT_SORT) === "-" + key ? key : "-" + key; // most first, then least
      if (sort === DEFAULT_SORT) params.delete("sort");
      else params.set("sort", sort);
      params.delete("page_token");
      go(params);
    });
  }
  window.addEventListener("resize", () => { if (listed.length) window.otelScatter.draw(scatter, listed); });
  start();
})();
