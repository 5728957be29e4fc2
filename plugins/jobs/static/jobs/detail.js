// One job: parameters, result, error, attempts and timings; cancel; refreshed while it runs.
"use strict";

(function () {
  const { api, json, el, describe } = window.plughost;
  const jobId = document.getElementById("job").dataset.jobId;
  const cancel = document.getElementById("cancel");
  const FINAL = new Set(["SUCCEEDED", "FAILED", "TIMEOUT", "CANCELED"]);
  const REFRESH_MS = 1000;

  function showError(message) {
    const line = document.getElementById("job-error");
    line.textContent = message;
    line.hidden = !message;
  }

  function block(title, value) {
    return el("section", {}, el("h2", {}, title),
      value === null || value === undefined ? el("p", { className: "muted" }, "none") : el("pre", { className: "mono" }, typeof value === "string" ? value : JSON.stringify(value, null, 2)));
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : null;
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

  function artifacts(found) {
    const items = found.artifacts || [];
    return el("section", { id: "job-artifacts" }, el("h2", {}, "Artifacts"),
      items.length ? el("ul", {}, ...items.map((item) => el("li", {},
        el("a", { href: "#", onclick: (event) => { event.preventDefault(); download(item.url, item.name); } }, item.name),
        " — " + item.size + " bytes"))) : el("p", { className: "muted" }, "none"));
  }

  function facts(job) {
    const entries = [
      ["Status", el("span", { className: "badge " + job.status, id: "job-status" }, job.status)],
      ["Type", job.type], ["Attempt", job.attempt + " of " + job.max_attempts], ["Timeout", job.timeout_seconds + " s"],
      ["Created", when(job.created_at)], ["Started", when(job.started_at)], ["Finished", when(job.finished_at)],
    ];
    if (job.progress) entries.push(["Progress", [job.progress.fraction === null ? "" : Math.round(job.progress.fraction * 100) + "%", job.progress.message].filter(Boolean).join(" ")]);
    if (job.cancel_requested && !FINAL.has(job.status)) entries.push(["Cancel", "requested"]);
    return el("section", {}, el("h2", {}, "Job"), el("dl", {}, ...entries.flatMap(([key, value]) => [el("dt", {}, key), el("dd", {}, value === null ? "—" : value)])));
  }

  async function refresh() {
    let job;
    try {
      job = await json("/api/jobs/" + encodeURIComponent(jobId));
    } catch (error) {
      showError(error.message);
      return;
    }
    document.getElementById("job-title").textContent = job.type + " · " + job.id;
    const base = "/api/jobs/" + encodeURIComponent(jobId);
    const [found, log] = await Promise.all([json(base + "/artifacts").catch(() => ({})), json(base + "/logs").catch(() => ({}))]);
    document.getElementById("job-details").replaceChildren(facts(job), block("Parameters", job.params), block("Result", job.result),
      block("Error", job.error), artifacts(found), block("Log", log.log || null));
    cancel.hidden = FINAL.has(job.status);
    cancel.disabled = job.cancel_requested;
    if (!FINAL.has(job.status)) setTimeout(refresh, REFRESH_MS);
  }

  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    const response = await api("/api/jobs/" + encodeURIComponent(jobId) + "/cancel", { method: "POST" });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      showError(response.status + " " + describe(body.detail, response.statusText));
    }
  });
  refresh();
})();
