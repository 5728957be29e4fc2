// The job list: filters by status and type, newest first, "More" for the next page.
"use strict";

(function () {
  const { json, el } = window.plughost;
  const form = document.getElementById("job-filters");
  const body = document.querySelector("#jobs tbody");
  const more = document.getElementById("more");
  const errorLine = document.getElementById("jobs-error");
  let nextToken = null;

  function row(job) {
    return el("tr", {},
      el("td", { className: "mono" }, el("a", { href: "/jobs/" + encodeURIComponent(job.id) }, job.id)),
      el("td", {}, job.type),
      el("td", {}, el("span", { className: "badge " + job.status }, job.status)),
      el("td", { className: "mono" }, job.created_at ? new Date(job.created_at).toLocaleString(undefined, { hour12: false }) : ""),
      el("td", { className: "num" }, job.attempt + " / " + job.max_attempts),
    );
  }

  async function load(append) {
    const params = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) params.set(key, value);
    params.set("limit", "50");
    if (append && nextToken) params.set("page_token", nextToken);
    errorLine.hidden = true;
    try {
      const page = await json("/api/jobs?" + params);
      const found = page.jobs.map(row);
      if (append) body.append(...found); else body.replaceChildren(...found);
      if (!append && !found.length) body.append(el("tr", {}, el("td", { colSpan: 5, className: "muted" }, "No jobs match.")));
      nextToken = page.next_page_token;
    } catch (error) {
      errorLine.textContent = error.message;
      errorLine.hidden = false;
      nextToken = null;
    }
    more.hidden = !nextToken;
  }

  json("/api/jobs/types").then((answer) => {
    const select = document.getElementById("type-filter");
    for (const type of answer.types) select.append(el("option", { value: type.name }, type.name));
  }, () => {});
  form.addEventListener("submit", (event) => { event.preventDefault(); load(false); });
  more.addEventListener("click", () => load(true));
  load(false);
})();
