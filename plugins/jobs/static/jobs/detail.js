// One job: its facts, parameters and result rendered for people (a job type with a report of its
// own gets it from plughostJobs.renderers), error, artifacts with size and type, and its log;
// Cancel and Delete, confirmed; refreshed while it runs. An unknown job is a page in words.
"use strict";

(function () {
  const { api, json, el, describe, time, bytes, notFound, workspace } = window.plughost;
  const { label, renderers } = window.plughostJobs;
  const jobId = document.getElementById("job").dataset.jobId;
  const cancel = document.getElementById("cancel");
  const remove = document.getElementById("delete");
  const FINAL = new Set(["SUCCEEDED", "FAILED", "TIMEOUT", "CANCELED"]);
  const REFRESH_MS = 1000;
  const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/;
  const base = "/api/jobs/" + encodeURIComponent(jobId);

  function showError(message) {
    const line = document.getElementById("job-error");
    line.textContent = message;
    line.hidden = !message;
  }

  // A download through plughost.api (the workspace header and the token travel with it; a plain
  // link would carry neither), handed to the browser as a blob.
  async function download(url, name) {
    const response = await api(url);
    if (!response.ok) {
      showError(response.status + " " + response.statusText + ": " + name);
      return;
    }
    const link = el("a", { href: URL.createObjectURL(await response.blob()), download: name });
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
  }

  function downloadLink(url, name) {
    return el("a", { href: url, onclick: (event) => { event.preventDefault(); download(url, name); } }, name);
  }

  // One value for people: a time, a size, a link to a trace or a download, a nested list or table.
  function value(key, item) {
    if (item === null || item === undefined || item === "") return el("span", { className: "muted" }, "\u2014");
    if (typeof item === "boolean") return item ? "yes" : "no";
    if (typeof item === "number") return key === "bytes" || key.endsWith("_bytes") ? bytes(item) : item.toLocaleString();
    if (typeof item === "string") {
      if (ISO_TIME.test(item)) return time(item);
      if (/^[0-9a-f]{32}$/.test(item) && key.includes("trace")) return el("a", { className: "mono", href: "/traces/" + item }, item);
      if (key.endsWith("url") && item.startsWith("/api/")) return downloadLink(item, item.split("/").pop());
      return item;
    }
    if (Array.isArray(item)) {
      if (!item.length) return el("span", { className: "muted" }, "none");
      if (item.every((entry) => entry && typeof entry === "object" && !Array.isArray(entry))) return table(item);
      return item.map((entry) => (typeof entry === "object" ? JSON.stringify(entry) : String(entry))).join(", ");
    }
    return facts(item, true);
  }

  // An object as a definition list: a job's fields with readable labels, a nested object's keys
  // (data, such as filter names) as they are.
  function facts(object, nested) {
    const entries = Object.entries(object || {});
    if (!entries.length) return el("span", { className: "muted" }, "none");
    return el("dl", {}, ...entries.flatMap(([key, item]) => [el("dt", { className: nested ? "mono" : "" }, nested ? key : label(key)), el("dd", {}, value(key, item))]));
  }

  // Objects of one shape as a table, columns from their keys.
  function table(rows, columns) {
    const keys = columns || [...new Set(rows.flatMap((row) => Object.keys(row)))];
    return el("table", { className: "table compact" },
      el("thead", {}, el("tr", {}, ...keys.map((key) => el("th", {}, label(key))))),
      el("tbody", {}, ...rows.map((row) => el("tr", {}, ...keys.map((key) => el("td", { className: typeof row[key] === "number" ? "num" : "" }, value(key, row[key])))))));
  }

  function section(title, content, id) {
    return el("section", id ? { id } : {}, el("h2", {}, title), content);
  }

  function artifacts(found) {
    const items = found.artifacts || [];
    return section("Artifacts", items.length
      ? el("table", { className: "table compact" },
        el("thead", {}, el("tr", {}, el("th", {}, "File"), el("th", {}, "Type"), el("th", { className: "num" }, "Size"), el("th", {}, "Written"))),
        el("tbody", {}, ...items.map((item) => el("tr", {},
          el("td", {}, downloadLink(item.url, item.name)), el("td", { className: "mono" }, item.type || ""),
          el("td", { className: "num", title: item.size.toLocaleString() + " bytes" }, bytes(item.size)), el("td", {}, time(item.modified))))))
      : el("p", { className: "muted" }, "none"), "job-artifacts");
  }

  function jobFacts(job) {
    const entries = [
      ["Status", el("span", { className: "badge " + job.status, id: "job-status" }, job.status)],
      ["Type", job.type], ["Attempt", job.attempt + " of " + job.max_attempts], ["Timeout", job.timeout_seconds + " s"],
      ["Created", time(job.created_at)], ["Started", time(job.started_at)], ["Finished", time(job.finished_at)],
    ];
    if (job.schedule_id) entries.push(["Schedule", job.schedule_id]);
    if (job.progress) entries.push(["Progress", [job.progress.fraction === null ? "" : Math.round(job.progress.fraction * 100) + "%", job.progress.message].filter(Boolean).join(" ")]);
    if (job.cancel_requested && !FINAL.has(job.status)) entries.push(["Cancel", "requested"]);
    return section("Job", el("dl", {}, ...entries.flatMap(([key, item]) => [el("dt", {}, key), el("dd", {}, item)])));
  }

  function result(job) {
    if (job.result === null || job.result === undefined) return section("Result", el("p", { className: "muted" }, FINAL.has(job.status) ? "none" : "not yet"), "job-result");
    const render = renderers[job.type];
    const content = render ? render(job.result, { value, facts, table, time, bytes, download: downloadLink }) : facts(job.result);
    const raw = el("details", { className: "raw" }, el("summary", {}, "As JSON"), el("pre", { className: "mono" }, JSON.stringify(job.result, null, 2)));
    return el("section", { id: "job-result", className: render ? "report" : "" }, el("h2", {}, render ? "Report" : "Result"), content, raw);
  }

  async function refresh() {
    let job;
    try {
      job = await json(base);
    } catch (error) {
      if (error.status === 404) {
        notFound("No such job", "There is no job " + jobId + " in workspace '" + workspace() + "'. It may have been deleted, or be in another workspace (switch it above).", ["All jobs", "/jobs"]);
      } else showError(error.message);
      return;
    }
    document.getElementById("job-title").textContent = job.type + " · " + job.id;
    const [found, log] = await Promise.all([json(base + "/artifacts").catch(() => ({})), json(base + "/logs").catch(() => ({}))]);
    document.getElementById("job-details").replaceChildren(...[
      jobFacts(job), section("Parameters", facts(job.params), "job-params"), result(job),
      job.error ? section("Error", el("pre", { className: "mono error" }, job.error)) : null,
      artifacts(found),
      section("Log", log.log ? el("pre", { className: "mono" }, log.log) : el("p", { className: "muted" }, "none")),
    ].filter(Boolean));
    cancel.hidden = FINAL.has(job.status);
    cancel.disabled = job.cancel_requested;
    remove.hidden = !FINAL.has(job.status);
    if (!FINAL.has(job.status)) setTimeout(refresh, REFRESH_MS);
  }

  async function act(url, method, done) {
    const response = await api(url, { method });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      showError(response.status + " " + describe(body.detail, response.statusText));
      return;
    }
    done();
  }

  cancel.addEventListener("click", async () => {
    if (!window.confirm("Cancel job " + jobId + "? Its work stops and it cannot be resumed.")) return;
    cancel.disabled = true;
    await act(base + "/cancel", "POST", () => {});
  });
  remove.addEventListener("click", async () => {
    if (!window.confirm("Delete job " + jobId + " with its log and artifacts? This cannot be undone.")) return;
    remove.disabled = true;
    await act(base, "DELETE", () => { window.location.href = "/jobs"; });
  });
  refresh();
})();
