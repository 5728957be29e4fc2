// The gateway's configuration pages: a list with Edit and Delete, one form for "new" and "edit",
// API errors shown at the field they concern. Each page's script describes its kind with
// plughostGateway.configPage({...}).
"use strict";

(function () {
  const { api, json, el } = window.plughost;
  const { showMessage } = window.plughostGateway;

  // A FastAPI 422's detail list (or a 400/409's message) as [{field, problem}].
  function problems(status, detail, fieldForMessage) {
    if (Array.isArray(detail)) {
      return detail.map((item) => {
        const loc = (item.loc || []).slice(1);
        const where = loc.slice(1).map((part) => (typeof part === "number" ? "#" + (part + 1) : part)).join(" ");
        return { field: loc.length ? String(loc[0]) : "", problem: (where ? where + ": " : "") + item.msg };
      });
    }
    const text = typeof detail === "string" ? detail : (detail && detail.message) || String(status);
    const field = status === 409 ? "name" : status === 400 ? fieldForMessage : "";
    return [{ field, problem: text }];
  }

  /**
   * kind: "secrets" | "models" | "endpoints"; singular: "secret"...; columns(item): cells;
   * fill(form, item | null); body(form): the JSON fields besides the name (may throw {field, problem});
   * field400: the field a 400's message concerns; empty: what to say with none (and snippet(), snippetText:
   * a copy-paste command that creates the first, with a sentence above it); prepare(): before the form opens.
   */
  function configPage(kind) {
    const base = "/api/gateway/" + kind.kind;
    const form = document.getElementById("gw-form");
    const title = document.getElementById("gw-form-title");
    const formError = document.getElementById("gw-form-error");
    const rows = document.querySelector("#gw-list tbody");
    const columns = document.querySelectorAll("#gw-list thead th").length;
    let editing = null;

    function markErrors(found) {
      for (const slot of form.querySelectorAll(".field-error")) slot.textContent = "";
      const unplaced = [];
      for (const error of found) {
        const slot = error.field && form.querySelector('[data-field="' + CSS.escape(error.field) + '"] .field-error');
        if (slot) slot.textContent = slot.textContent ? slot.textContent + "; " + error.problem : error.problem;
        else unplaced.push((error.field ? error.field + ": " : "") + error.problem);
      }
      formError.textContent = unplaced.join("; ");
      formError.hidden = !unplaced.length;
    }

    // The open form is in the URL (?edit=<name>, or ?new): reload and a pasted link reopen it.
    function remember(state) {
      const url = new URL(window.location.href);
      url.searchParams.delete("edit");
      url.searchParams.delete("new");
      if (state !== null) url.searchParams.set(state.name === undefined ? "new" : "edit", state.name || "");
      window.history.replaceState(null, "", url.pathname + url.search);
    }

    async function open(item) {
      editing = item ? item.name : null;
      remember(item ? { name: item.name } : {});
      form.reset();
      markErrors([]);
      if (kind.prepare) await kind.prepare();
      title.textContent = item ? "Edit " + kind.singular + " " + item.name : "New " + kind.singular;
      form.elements.name.value = item ? item.name : "";
      form.elements.name.readOnly = Boolean(item);
      kind.fill(form, item);
      form.hidden = false;
      (item ? form.querySelector("input:not([readonly]), select") : form.elements.name).focus();
    }

    function close() {
      form.reset();
      form.hidden = true;
      editing = null;
      remember(null);
    }

    function deleteButton(item) {
      const button = el("button", { type: "button", className: "secondary danger", dataset: { requires: "admin" } }, "Delete");
      button.addEventListener("click", async () => {
        if (!button.classList.contains("confirm")) {
          button.classList.add("confirm");
          button.textContent = "Really delete?";
          return;
        }
        button.disabled = true;
        const response = await api(base + "/" + encodeURIComponent(item.name), { method: "DELETE" });
        if (response.ok) {
          showMessage("Deleted " + kind.singular + " " + item.name + ".");
          load();
          return;
        }
        const answer = await response.json().catch(() => ({}));
        const detail = typeof answer.detail === "string" ? answer.detail : response.statusText;
        showMessage(response.status === 409
          ? "Cannot delete " + kind.singular + " " + item.name + ": it is in use (" + detail + "). Change or delete what uses it first."
          : "Could not delete " + kind.singular + " " + item.name + ": " + response.status + " " + detail, true);
        button.disabled = false;
        button.classList.remove("confirm");
        button.textContent = "Delete";
      });
      return button;
    }

    function row(item) {
      const edit = el("button", { type: "button", className: "secondary", dataset: { requires: "admin" } }, "Edit");
      edit.addEventListener("click", async () => {
        try {
          await open(await json(base + "/" + encodeURIComponent(item.name)));
        } catch (error) {
          showMessage(error.message, true);
        }
      });
      const cells = kind.columns(item).map((cell) => el("td", {}, cell));
      return el("tr", { dataset: { name: item.name } }, ...cells, el("td", {}, el("div", { className: "gw-row-actions" }, edit, deleteButton(item))));
    }

    async function load() {
      try {
        const items = await json(base);
        rows.replaceChildren(...items.map(row));
        if (!items.length) {
          const empty = kind.snippet ? window.plughost.emptyState(kind.empty, kind.snippetText, kind.snippet()) : kind.empty;
          rows.append(el("tr", {}, el("td", { colSpan: columns, className: "muted" }, empty)));
        }
      } catch (error) {
        rows.replaceChildren(el("tr", {}, el("td", { colSpan: columns, className: "error" }, error.message)));
      }
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      let body;
      try {
        body = kind.body(form);
      } catch (error) {
        markErrors([error]);
        return;
      }
      const creating = editing === null;
      if (creating) body = Object.assign({ name: form.elements.name.value.trim() }, body);
      const path = creating ? base : base + "/" + encodeURIComponent(editing);
      const response = await api(path, { method: creating ? "POST" : "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) {
        markErrors(problems(response.status, answer.detail, kind.field400));
        return;
      }
      close();
      showMessage("Saved " + kind.singular + " " + answer.name + ".");
      load();
    });
    document.getElementById("gw-new").addEventListener("click", () => open(null).catch((error) => showMessage(error.message, true)));
    document.getElementById("gw-cancel").addEventListener("click", close);
    load();
    const query = new URLSearchParams(window.location.search);
    if (query.has("edit")) {
      json(base + "/" + encodeURIComponent(query.get("edit"))).then(open, (error) => { remember(null); showMessage(error.message, true); });
    } else if (query.has("new")) open(null).catch((error) => showMessage(error.message, true));
  }

  window.plughostGateway.configPage = configPage;
})();
