// The console shell: workspace switcher, token prompt, and plughost.api() for page scripts.
"use strict";

(function () {
  const WORKSPACE_KEY = "plughost.workspace";
  const TOKEN_KEY = "plughost.token";

  const WORKSPACE_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])$/;

  // The console's workspace: the URL's ?workspace= (so a pasted link shows the same data, and it becomes
  // the one chosen in this browser), else the one last chosen in this browser, else "default".
  const linkedWorkspace = new URLSearchParams(window.location.search).get("workspace");
  if (linkedWorkspace && WORKSPACE_NAME.test(linkedWorkspace)) localStorage.setItem(WORKSPACE_KEY, linkedWorkspace);

  function workspace() {
    const named = new URLSearchParams(window.location.search).get("workspace");
    if (named && WORKSPACE_NAME.test(named)) return named;
    return localStorage.getItem(WORKSPACE_KEY) || "default";
  }

  // This page's URL in another workspace (?workspace=, left out for "default").
  function inWorkspace(name) {
    const url = new URL(window.location.href);
    if (name === "default") url.searchParams.delete("workspace"); else url.searchParams.set("workspace", name);
    url.searchParams.delete("page_token");  // a page of the other workspace's list means nothing there
    return url.pathname + url.search + url.hash;
  }

  function askToken(refused) {
    const dialog = document.getElementById("token-dialog");
    const input = document.getElementById("token");
    document.getElementById("token-refused").hidden = !refused;
    input.value = "";
    return new Promise((resolve) => {
      dialog.addEventListener("close", function onClose() {
        dialog.removeEventListener("close", onClose);
        if (dialog.returnValue === "ok" && input.value) {
          sessionStorage.setItem(TOKEN_KEY, input.value);
          resolve(true);
        } else {
          resolve(false);
        }
      });
      dialog.showModal();
      input.focus();
    });
  }

  // The banner shown while the API answers that the database is unavailable (503, {"unavailable": "database"}).
  function databaseBanner(detail) {
    let banner = document.getElementById("database-banner");
    if (detail === null) {
      if (banner) banner.hidden = true;
      return;
    }
    if (!banner) {
      banner = el("div", { id: "database-banner", className: "banner", role: "status" });
      const topbar = document.querySelector(".topbar");
      if (topbar) topbar.after(banner);
      else document.body.prepend(banner);
    }
    banner.textContent = "The database is unavailable; retrying. " + detail;
    banner.hidden = false;
  }

  // Why the database is unavailable, as a sentence, when a 503 says so; null for any other answer.
  async function databaseUnavailable(response) {
    if (response.status !== 503) return null;
    const body = await response.clone().json().catch(() => null);
    if (!body || body.unavailable !== "database") return null;
    const reason = String(body.reason || "");
    return reason ? reason.charAt(0).toUpperCase() + reason.slice(1) + "." : "";
  }

  // fetch() for the console's own API calls: same origin, the workspace header, the token
  // (asked for when the server answers 401, never put in a URL), the session's CSRF token (accounts on;
  // a 401 then sends the browser to the sign-in page the server names). While the database is unavailable
  // a banner says so, and reads (GET, HEAD) are retried after Retry-After until it is back; other
  // answers are returned as is.
  async function api(path, options) {
    const init = Object.assign({}, options || {});
    const method = (init.method || "GET").toUpperCase();
    for (;;) {
      const headers = new Headers(init.headers || {});
      headers.set("X-Plughost-Workspace", workspace());
      const token = sessionStorage.getItem(TOKEN_KEY);
      if (token) headers.set("Authorization", "Bearer " + token);
      const csrf = document.cookie.match(/(?:^|;\s*)plughost_csrf=([^;]+)/);
      if (csrf) headers.set("X-CSRF-Token", decodeURIComponent(csrf[1]));
      const response = await fetch(path, Object.assign({}, init, { headers, credentials: "same-origin" }));
      const unavailable = await databaseUnavailable(response);
      databaseBanner(unavailable);
      if (unavailable !== null) {
        if (method !== "GET" && method !== "HEAD") return response;
        const seconds = Number(response.headers.get("Retry-After")) || 5;
        await new Promise((resolve) => setTimeout(resolve, Math.min(seconds, 30) * 1000));
        continue;
      }
      if (response.status !== 401) return response;
      const login = response.headers.get("X-Plughost-Login");
      if (login) {
        window.location.assign(login + "?next=" + encodeURIComponent(window.location.pathname + window.location.search));
        return response;
      }
      sessionStorage.removeItem(TOKEN_KEY);
      if (!(await askToken(Boolean(token)))) return response;
    }
  }

  // An error body's detail as a sentence: validation problems ([{loc, msg}, ...]) as "field: message".
  function describe(detail, fallback) {
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map((problem) => {
        const where = (problem.loc || []).filter((part) => !["body", "query", "path"].includes(part)).join(".");
        return (where ? where + ": " : "") + (problem.msg || JSON.stringify(problem));
      }).join("; ");
    }
    return detail ? JSON.stringify(detail) : fallback;
  }

  // The JSON answer; an Error saying what the server said otherwise (its status in error.status).
  async function json(path, options) {
    const response = await api(path, options);
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const error = new Error(response.status + " " + describe(body && (body.detail || body.error || body.message), response.statusText));
      error.status = response.status;
      throw error;
    }
    return body;
  }

  // The page's content replaced by a "not found" page in words, as the server's 404 page reads:
  // notFound("No such trace", "There is no trace … in workspace 'default'.", ["All traces", "/traces"]).
  function notFound(title, sentence, back) {
    const [backText, backPath] = back || ["Console home", "/"];
    document.title = title + " · plughost";
    document.querySelector("main.content").replaceChildren(el("section", { className: "not-found", id: "not-found" },
      el("h1", {}, title), el("p", {}, sentence), el("p", {}, el("a", { href: backPath }, "\u2190 " + backText))));
  }

  // One date format across the console: a <time> in local time ("2026-12-06 13:04:05"), the absolute
  // UTC time on hover. Accepts an ISO 8601 string, epoch milliseconds or a Date; "—" for none;
  // {ms: true} adds the milliseconds ("13:04:05.123"), for traces.
  function time(value, options) {
    if (value === null || value === undefined || value === "") return el("span", { className: "muted" }, "\u2014");
    const date = value instanceof Date ? value : new Date(value);
    if (Number.isNaN(date.getTime())) return el("span", {}, String(value));
    const pad = (number) => String(number).padStart(2, "0");
    const local = date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) + " " +
      pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds()) +
      (options && options.ms ? "." + String(date.getMilliseconds()).padStart(3, "0") : "");
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
    return el("time", { dateTime: date.toISOString(), title: date.toISOString().replace("T", " ").replace("Z", " UTC") + " (shown in " + zone + ")" }, local);
  }

  // An empty page's invitation: what is missing, and a copy-paste snippet that fills it.
  function emptyState(title, text, snippet) {
    const code = el("pre", { className: "mono snippet" }, snippet);
    const copy = el("button", { type: "button", className: "secondary copy", onclick: async () => {
      try { await navigator.clipboard.writeText(snippet); copy.textContent = "Copied"; } catch (error) { copy.textContent = "Select the text to copy"; }
    } }, "Copy");
    return el("div", { className: "empty-state" }, el("h2", {}, title), el("p", {}, text), el("div", { className: "snippet-box" }, code, copy));
  }

  // A form whose named fields live in the URL's query string (the API's own parameter names): they
  // are read from it at load, written to it (a new history entry) when the form changes or is
  // submitted, and read again on Back and Forward; show() is called each time with the fields' values.
  function formInUrl(form, show) {
    const names = [...new Set([...form.elements].map((field) => field.name).filter(Boolean))];
    const fromUrl = () => {
      const query = new URLSearchParams(window.location.search);
      for (const name of names) {
        const field = form.elements[name];
        if (query.has(name)) field.value = query.get(name);
        else if (field.dataset.initial !== undefined) field.value = field.dataset.initial;
      }
    };
    for (const name of names) form.elements[name].dataset.initial = form.elements[name].value;
    const toUrl = (event) => {
      if (event) event.preventDefault();
      const query = new URLSearchParams(window.location.search);
      for (const name of names) {
        const field = form.elements[name];
        if (field.value === "" || field.value === field.dataset.initial) query.delete(name); else query.set(name, field.value);
      }
      const next = window.location.pathname + (query.toString() ? "?" + query : "");
      if (next !== window.location.pathname + window.location.search) window.history.pushState(null, "", next);
      show();
    };
    form.addEventListener("submit", toUrl);
    form.addEventListener("change", () => toUrl());
    window.addEventListener("popstate", () => { fromUrl(); show(); });
    fromUrl();
    show();
  }

  // A byte count for people: 1.5 KiB, 12 MiB.
  function bytes(count) {
    if (count === null || count === undefined) return "\u2014";
    const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let value = Number(count);
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return (unit ? value.toFixed(value < 10 ? 1 : 0) : String(value)) + " " + units[unit];
  }

  // Server-sent events of a fetch() answer, read as they arrive: yields {event, data} (data as text).
  async function* events(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
        const blocks = buffer.split(/\r?\n\r?\n/);
        buffer = done ? "" : blocks.pop();
        for (const block of blocks) {
          let event = "message";
          const data = [];
          for (const line of block.split(/\r?\n/)) {
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
          if (data.length) yield { event, data: data.join("\n") };
        }
        if (done) return;
      }
    } finally {
      reader.releaseLock();
    }
  }

  // A DOM element: el("td", {className: "x"}, "text", child). Text is always set as text.
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key in node) node[key] = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  // The workspace box: the workspaces that hold data offered as choices (GET /api/workspaces), the
  // choice kept in the URL and in this browser, and a note when the chosen one holds no data yet.
  function setUpWorkspace() {
    const form = document.getElementById("workspace-form");
    const input = document.getElementById("workspace");
    if (!form || !input) return;
    const current = workspace();
    input.value = current;
    if (new URLSearchParams(window.location.search).has("workspace")) localStorage.setItem(WORKSPACE_KEY, current);
    else if (current !== "default") window.history.replaceState(window.history.state, "", inWorkspace(current));
    const choose = () => {
      if (!input.checkValidity()) {
        input.reportValidity();
        return;
      }
      const name = input.value.trim() || "default";
      if (name === workspace()) return;
      localStorage.setItem(WORKSPACE_KEY, name);
      window.location.assign(inWorkspace(name));
    };
    form.addEventListener("submit", (event) => { event.preventDefault(); choose(); });
    input.addEventListener("change", choose);
    // Asked without prompting for a token: the page's own calls do that once.
    const token = sessionStorage.getItem(TOKEN_KEY);
    fetch("/api/workspaces", { headers: token ? { Authorization: "Bearer " + token } : {}, credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status))).then((answer) => {
      const known = answer.workspaces || [];
      const list = el("datalist", { id: "workspaces" }, ...known.map((name) => el("option", { value: name })));
      form.append(list);
      input.setAttribute("list", "workspaces");
      input.title = "Workspaces with data: " + known.join(", ");
      if (!known.includes(current)) {
        const note = el("div", { className: "banner notice", id: "workspace-empty", role: "status" },
          "Workspace \u201c" + current + "\u201d has no data yet. Data sent with the header X-Plughost-Workspace: " + current +
          " lands here; or switch to one that has data: ", ...known.flatMap((name, index) => [index ? ", " : "", el("a", { href: inWorkspace(name) }, name)]), ".");
        document.querySelector(".topbar").after(note);
      }
    }, () => {});  // no workspace plugin: the box takes any name
  }

  window.plughost = { api, json, el, events, workspace, inWorkspace, describe, notFound, time, bytes, emptyState, formInUrl };
  setUpWorkspace();
})();
