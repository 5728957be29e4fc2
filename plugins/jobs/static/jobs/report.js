// Reports for the built-in job types whose result is more than a few facts, registered in
// plughostJobs.renderers by type: renderer(result, helpers) returns the nodes to show.
"use strict";

(function () {
  const { el } = window.plughost;
  const { renderers } = window.plughostJobs;

  function duration(ms) {
    if (ms === null || ms === undefined) return "\u2014";
    if (ms >= 60000) return (ms / 60000).toFixed(1) + " min";
    if (ms >= 1000) return (ms / 1000).toFixed(2) + " s";
    return (ms >= 10 ? Math.round(ms) : Number(ms.toFixed(2))) + " ms";
  }

  function money(usd) {
    return usd === null || usd === undefined ? "\u2014" : "$" + (usd < 0.01 ? usd.toFixed(6) : usd.toFixed(2));
  }

  function tile(name, shown, note) {
    return el("div", { className: "tile" }, el("span", { className: "tile-value" }, shown), el("span", { className: "tile-name" }, name), note ? el("span", { className: "muted" }, note) : null);
  }

  function rows(headers, items, cells) {
    if (!items.length) return el("p", { className: "muted" }, "none");
    return el("table", { className: "table compact" },
      el("thead", {}, el("tr", {}, ...headers.map(([text, numeric]) => el("th", { className: numeric ? "num" : "" }, text)))),
      el("tbody", {}, ...items.map((item) => el("tr", {}, ...cells(item).map((cell, index) => el("td", { className: headers[index][1] ? "num" : "" }, cell))))));
  }

  // What the report found, as sentences, most telling first.
  function findings(aggregate, traces) {
    const found = [];
    const genai = aggregate.genai || {};
    if (aggregate.error_traces) found.push(aggregate.error_traces + " of " + aggregate.traces + " traces failed" + (aggregate.errors.length ? "; the most common error: " + aggregate.errors[0].error + " (" + aggregate.errors[0].traces + " traces)." : "."));
    if (aggregate.critical_path_by_name.length) {
      const top = aggregate.critical_path_by_name[0];
      found.push("Most time on the critical path goes to " + top.name + " (" + duration(top.on_path_ms) + " across the traces).");
    }
    if (aggregate.repeated_calls.length) found.push("Repeated calls (N+1): " + aggregate.repeated_calls.map((item) => item.name + " in " + item.traces + " traces").join(", ") + ".");
    if (genai.retries) found.push(genai.retries + " LLM retries.");
    if (genai.repeated_prompts) found.push(genai.repeated_prompts + " repeated prompts (the same prompt sent again).");
    if (genai.tool_loops) found.push(genai.tool_loops + " tool loops.");
    if (genai.slow_llm_calls) found.push(genai.slow_llm_calls + " slow LLM calls.");
    const slowest = traces.reduce((worst, item) => (!worst || item.duration_ms > worst.duration_ms ? item : worst), null);
    if (slowest) found.push("The slowest trace is " + (slowest.root_name || slowest.trace_id) + " (" + duration(slowest.duration_ms) + ").");
    if (!found.length) found.push("Nothing stands out: no errors, repeats or loops.");
    return found;
  }

  function traceList(filter) {
    const query = new URLSearchParams();
    for (const [key, item] of Object.entries(filter || {})) if (item !== null && item !== undefined) query.set(key, item);
    return "/traces" + (query.toString() ? "?" + query : "");
  }

  renderers["assistant.batch_analysis"] = function (result, helpers) {
    const aggregate = result.aggregate;
    const genai = aggregate.genai || {};
    const traces = result.traces || [];
    const filterText = Object.entries(result.filter || {}).map(([key, item]) => key + " = " + (/^\d{4}-\d\d-\d\dT/.test(item) ? helpers.time(item).textContent : item));
    return el("div", { className: "batch-report" },
      el("p", {}, "Filter: ", ...(filterText.length ? filterText.map((text) => el("code", { className: "chip" }, text)) : ["every trace"]), " ",
        el("a", { href: traceList(result.filter) }, "Open these traces"),
        result.matched_more_than_analysed ? el("span", { className: "muted" }, " · more traces matched than were analysed") : null,
        (result.too_big || []).length
          ? el("span", { className: "muted" }, ` · ${result.too_big.length.toLocaleString()} too big to analyse (PLUGHOST_ASSISTANT_MAX_SPANS)`)
          : null),
      el("div", { className: "tiles" },
        tile("traces analysed", aggregate.traces.toLocaleString()),
        tile("failed", aggregate.error_traces.toLocaleString()),
        tile("p50 duration", duration(aggregate.duration_ms.p50)),
        tile("p95 duration", duration(aggregate.duration_ms.p95)),
        tile("slowest", duration(aggregate.duration_ms.max)),
        tile("LLM calls", (genai.llm_calls || 0).toLocaleString()),
        tile("tokens in / out", (genai.input_tokens || 0).toLocaleString() + " / " + (genai.output_tokens || 0).toLocaleString()),
        tile("LLM cost", money(genai.cost))),
      el("h3", {}, "Findings"),
      el("ul", { className: "findings" }, ...findings(aggregate, traces).map((text) => el("li", {}, text))),
      el("div", { className: "report-columns" },
        el("div", {}, el("h3", {}, "Where the time goes (critical path)"),
          rows([["Operation"], ["Time on path", true]], aggregate.critical_path_by_name, (item) => [item.name, duration(item.on_path_ms)])),
        el("div", {}, el("h3", {}, "Errors"),
          rows([["Error"], ["Traces", true]], aggregate.errors, (item) => [item.error, item.traces])),
        el("div", {}, el("h3", {}, "Repeated calls"),
          rows([["Operation"], ["Traces", true]], aggregate.repeated_calls, (item) => [item.name, item.traces]))),
      el("h3", {}, "Traces"),
      rows([["Trace"], ["Service"], ["Status"], ["Duration", true], ["Spans", true], ["Errors", true], ["LLM calls", true], ["Tokens", true], ["Cost", true], ["Most time in"]], traces, (item) => [
        el("a", { href: "/traces/" + item.trace_id, title: item.trace_id }, item.root_name || item.trace_id.slice(0, 16)),
        item.service_name || "\u2014",
        el("span", { className: "badge " + (item.status || "") }, item.status || "\u2014"),
        duration(item.duration_ms), item.span_count.toLocaleString(), item.error_count.toLocaleString(),
        item.genai ? item.genai.llm_call_count.toLocaleString() : "\u2014",
        item.genai ? (item.genai.input_tokens + item.genai.output_tokens).toLocaleString() : "\u2014",
        item.genai ? money(item.genai.cost) : "\u2014",
        item.critical_path.length ? item.critical_path[0].name + " (" + duration(item.critical_path[0].on_path_ms) + ")" : "\u2014",
      ]));
  };

  renderers["gateway.batch"] = function (result, helpers) {
    const counts = result.request_counts || {};
    const file = (id) => (id ? helpers.download("/gateway/v1/files/" + encodeURIComponent(id) + "/content", id + ".jsonl") : el("span", { className: "muted" }, "none"));
    return el("div", {},
      el("div", { className: "tiles" }, tile("requests", (counts.total ?? 0).toLocaleString()), tile("answered", (counts.completed ?? 0).toLocaleString()), tile("failed", (counts.failed ?? 0).toLocaleString())),
      el("dl", {}, el("dt", {}, "Answers"), el("dd", {}, file(result.output_file_id)), el("dt", {}, "Errors"), el("dd", {}, file(result.error_file_id))));
  };
})();
