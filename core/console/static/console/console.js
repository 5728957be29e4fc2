// The console shell: workspace switcher, token prompt, and plughost.api() for page scripts.
"use strict";

(function () {
  const WORKSPACE_KEY = "plughost.workspace";
  const TOKEN_KEY = "plughost.token";

  // The workspace: a page's own link names it (?workspace=, so a pasted link shows what its sender saw,
  // and becomes the chosen one), else the one chosen last in this browser.
  const linkedWorkspace = new URLSearchParams(window.location.search).get("workspace");
  if (linkedWorkspace) localStorage.setItem(WORKSPACE_KEY, linkedWorkspace);

  function workspace() {
    return localStorage.getItem(WORKSPACE_KEY) || "default";
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

  async function json(path, options) {
    const response = await api(path, options);
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      throw new Error(response.status + " " + describe(body && (body.detail || body.error || body.message), response.statusText));
    }
    return body;
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

  function setUpWorkspace() {
    const form = document.getElementById("workspace-form");
    const input = document.getElementById("workspace");
    if (!form || !input) return;
    input.value = workspace();
    const choose = () => {
      if (!input.checkValidity()) {
        input.reportValidity();
        return;
      }
      const name = input.value.trim() || "default";
      if (name === workspace()) return;
      localStorage.setItem(WORKSPACE_KEY, name);
      const url = new URL(window.location.href);
      if (url.searchParams.has("workspace")) {  // the page's link names the workspace: name the new one
        url.searchParams.set("workspace", name);
        url.searchParams.delete("page_token");  // a page of the other workspace's list means nothing here
        window.location.assign(url.href);
      } else {
        window.location.reload();
      }
    };
    form.addEventListener("submit", (event) => { event.preventDefault(); choose(); });
    input.addEventListener("change", choose);
  }

  window.plughost = { api, json, el, events, workspace, describe };
  setUpWorkspace();
})();
