// Usage: per endpoint and model totals and spend over the chosen window, per API key (with the calls its
// limits refused), spend over time, a chart per endpoint, recent calls.
"use strict";

(function () {
  const { json, el } = window.plughost;
  const { showMessage, when, usageChart, spendChart, dollars } = window.plughostGateway;
  const form = document.getElementById("gw-usage-form");
  const summary = document.querySelector("#gw-summary tbody");
  const keys = document.querySelector("#gw-keys tbody");
  const calls = document.querySelector("#gw-calls tbody");
  const charts = document.getElementById("gw-charts");
  const spend = document.getElementById("gw-spend");
  const RECENT = 1000, SHOWN = 100, BINS = 60;

  const number = (value) => (value === null || value === undefined ? "—" : Math.round(value).toLocaleString());
  const cost = (usd) => (usd === null || usd === undefined ? "—" : dollars(usd));

  function emptyRow(columns, text) {
    return el("tr", {}, el("td", { colSpan: columns, className: "muted" }, text));
  }

  function summaryRow(row) {
    return el("tr", {}, el("td", {}, row.endpoint), el("td", {}, row.model), el("td", { className: "num" }, number(row.calls)),
      el("td", { className: "num" }, number(row.errors)), el("td", { className: "num" }, number(row.p50_ms)), el("td", { className: "num" }, number(row.p95_ms)),
      el("td", { className: "num" }, number(row.input_tokens)), el("td", { className: "num" }, number(row.output_tokens)),
      el("td", { className: "num cost" }, cost(row.cost_usd)));
  }

  function keyName(key) {
    return key === null ? el("span", { className: "muted" }, "no key") : key;
  }

  function keyRow(row) {
    const refused = row.refused;
    return el("tr", { dataset: { key: row.key === null ? "" : row.key } }, el("td", {}, keyName(row.key)),
      el("td", { className: "num" }, number(row.calls)), el("td", { className: "num" }, number(row.errors)),
      el("td", { className: "num" }, number(row.input_tokens)), el("td", { className: "num" }, number(row.output_tokens)),
      el("td", { className: "num cost" }, cost(row.cost_usd)), el("td", { className: "num limited" }, number(refused.requests + refused.tokens)),
      el("td", { className: "num over-budget" }, number(refused.budget)), el("td", { className: "num endpoint-refused" }, number(refused.endpoint)));
  }

  function callRow(call) {
    return el("tr", {}, el("td", { className: "mono" }, when(call.created_at)), el("td", {}, keyName(call.key_name)), el("td", {}, call.endpoint), el("td", {}, call.model), el("td", {}, call.provider),
      el("td", {}, el("span", { className: "badge " + (call.status === 200 ? "ok" : "error") }, call.status)), el("td", {}, call.streamed ? "yes" : "no"),
      el("td", { className: "num" }, number(call.latency_ms)), el("td", { className: "num" }, number(call.prompt_tokens)), el("td", { className: "num" }, number(call.completion_tokens)),
      el("td", { className: "num cost" }, cost(call.cost_usd)));
  }

  async function load() {
    const windowSeconds = Number(form.elements.window_seconds.value);
    const until = Date.now() / 1000, since = until - windowSeconds;
    let totals, perKey, recent, timeline;
    try {
      [totals, perKey, recent, timeline] = await Promise.all([
        json("/api/gateway/usage/summary?window_seconds=" + windowSeconds),
        json("/api/gateway/usage/keys?window_seconds=" + windowSeconds),
        json("/api/gateway/usage?limit=" + RECENT),
        json("/api/gateway/usage/timeline?window_seconds=" + windowSeconds + "&buckets=" + BINS),
      ]);
      showMessage("");
    } catch (error) {
      showMessage(error.message, true);
      return;
    }
    const inWindow = recent.filter((call) => call.created_at >= since);
    const none = "No calls in this window. Calls through the endpoints (try the Playground) show here.";
    summary.replaceChildren(...totals.models.map(summaryRow));
    if (!totals.models.length) summary.append(emptyRow(9, none));
    keys.replaceChildren(...perKey.keys.map(keyRow));
    if (!perKey.keys.length) keys.append(emptyRow(9, none));
    calls.replaceChildren(...inWindow.slice(0, SHOWN).map(callRow));
    if (!inWindow.length) calls.append(emptyRow(11, none));
    const spent = timeline.buckets.reduce((sum, bucket) => sum + (bucket.cost_usd || 0), 0);
    const priced = timeline.buckets.some((bucket) => bucket.cost_usd !== null);
    spend.replaceChildren(inWindow.length
      ? el("section", { className: "gw-chart gw-spend" },
        el("div", { className: "gw-legend" }, el("span", { className: "spend" }, "▮ spend per " + Math.round(timeline.bucket_seconds) + " s"),
          el("span", { id: "gw-spend-total" }, priced ? dollars(spent) + " in this window" : "no priced calls in this window")),
        spendChart(timeline.buckets, timeline.bucket_seconds))
      : el("p", { className: "muted" }, none));
    const byEndpoint = new Map();
    for (const call of inWindow) byEndpoint.set(call.endpoint, (byEndpoint.get(call.endpoint) || []).concat([call]));
    charts.replaceChildren(...Array.from(byEndpoint, ([endpoint, found]) => el("section", { className: "gw-chart", dataset: { endpoint } },
      el("h2", {}, endpoint),
      el("div", { className: "gw-legend" }, el("span", { className: "latency" }, "● latency"), el("span", { className: "tokens" }, "● tokens"),
        el("span", {}, found.length + " calls")),
      usageChart(found, until))));
    if (!byEndpoint.size) charts.append(el("p", { className: "muted" }, none));
  }

  window.plughost.formInUrl(form, load);  // ?window_seconds=, as the API names it
})();
