// The job list: filters by status and type, newest first, a page at a time. The filters and the
// page are in the URL (the API's own parameter names: status, type, page_token), so Back, reload
// and a pasted link show the same list.
"use strict";

(function () {
  const { json, el, time, emptyState } = window.plughost;
  const form = document.getElementById("job-filters");
  const body = document.querySelector("#jobs tbody");
  const older = document.getElementById("older");
  const newest = document.getElementById("newest");
  const errorLine = document.getElementById("jobs-error");
  const STATE = ["status", "type", "page_token"];
  let types = [];

  // A curl command that submits a job of a registered type, its required parameters filled in.
  function submitSnippet() {
    const type = types.find((item) => item.name === "otel.retention") || types[0];
    const example = { type: type ? type.name : "<type>", params: {} };
    const schema = (type && type.parameters) || {};
    for (const name of schema.required || []) {
      const property = schema.properties[name] || {};
      example.params[name] = property.type === "integer" || property.type === "number" ? (name === "days" ? 30 : property.minimum ?? 1)
        : property.type === "boolean" ? false : "<" + name + ">";
    }
    return "curl -X POST " + window.location.origin + "/api/jobs \\\n  -H 'Content-Type: application/json' \\\n" +
      (window.plughost.workspace() === "default" ? "" : "  -H 'X-Plughost-Workspace: " + window.plughost.workspace() + "' \\\n") +
      "  -d '" + JSON.stringify(example) + "'";
  }

  function row(job) {
    return el("tr", {},
      el("td", { className: "mono" }, el("a", { href: "/jobs/" + encodeURIComponent(job.id) }, job.id)),
      el("td", {}, job.type),
      el("td", {}, el("span", { className: "badge " + job.status }, job.status)),
      el("td", {}, time(job.created_at)),
      el("td", {}, time(job.finished_at)),
      el("td", { className: "num" }, job.attempt + " / " + job.max_attempts),
    );
  }

  // The list's state from the URL (the workspace stays: the console shell reads it).
  function state() {
    const query = new URLSearchParams(window.location.search);
    return Object.fromEntries(STATE.filter((key) => query.get(key)).map((key) => [key, query.get(key)]));
  }

  function url(changes) {
    const query = new URLSearchParams(window.location.search);
    for (const key of STATE) query.delete(key);
    for (const [key, value] of Object.entries(changes)) if (value) query.set(key, value);
    return window.location.pathname + (query.toString() ? "?" + query : "");
  }

  function emptyList(filtered) {
    if (filtered) return el("tr", {}, el("td", { colSpan: 6, className: "muted" }, "No jobs match these filters."));
    return el("tr", {}, el("td", { colSpan: 6 }, emptyState("No jobs yet",
      "Jobs run in the background: pick a type in the form above, let a schedule start them, or submit one from a terminal:", submitSnippet())));
  }

  async function load() {
    const current = state();
    form.elements.status.value = current.status || "";
    form.elements.type.value = current.type || "";
    const params = new URLSearchParams(current);
    params.set("limit", "50");
    errorLine.hidden = true;
    try {
      const page = await json("/api/jobs?" + params);
      body.replaceChildren(...(page.jobs.length ? page.jobs.map(row) : [emptyList(current.status || current.type || current.page_token)]));
      older.hidden = !page.next_page_token;
      if (page.next_page_token) older.href = url(Object.assign({}, current, { page_token: page.next_page_token }));
    } catch (error) {
      errorLine.textContent = error.message;
      errorLine.hidden = false;
      older.hidden = true;
    }
    newest.hidden = !current.page_token;
    newest.href = url(Object.assign({}, current, { page_token: null }));
  }

  function go(href) {
    window.history.pushState(null, "", href);
    load();
  }

  const typesLoaded = json("/api/jobs/types").then((answer) => {
    types = answer.types;
    const select = document.getElementById("type-filter");
    for (const type of answer.types) select.append(el("option", { value: type.name }, type.name));
  }, () => {});
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    go(url({ status: form.elements.status.value, type: form.elements.type.value }));
  });
  for (const link of [older, newest]) link.addEventListener("click", (event) => { event.preventDefault(); go(link.href); });
  window.addEventListener("popstate", load);
  typesLoaded.then(load);
})();
