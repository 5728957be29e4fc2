// The accounts page: list users and keys, add them (a new key is shown once), disable, enable, delete.
"use strict";

(function () {
  const { json, el, api } = window.plughost;
  const error = document.getElementById("accounts-error");

  function say(message) {
    error.textContent = message || "";
    error.hidden = !message;
  }

  function describeRoles(roles) {
    return Object.entries(roles).map(([w, r]) => r + " in " + (w === "*" ? "every workspace" : w)).join(", ");
  }

  function describeLimits(limits) {
    const parts = [];
    if (limits.rpm) parts.push(limits.rpm + " calls/min");
    if (limits.tpm) parts.push(limits.tpm + " tokens/min");
    if (limits.budget_usd) parts.push("$" + limits.budget_usd + " a " + limits.budget_period);
    if (limits.endpoints) parts.push("only " + limits.endpoints.join(", "));
    return parts.join(" · ") || "none";
  }

  function describeUsage(usage) {
    if (!usage) return "";
    return usage.calls + " calls · " + usage.tokens + " tokens · $" + usage.spend_usd.toFixed(4) +
      (usage.refused ? " · " + usage.refused + " refused" : "");
  }

  function when(seconds) {
    return seconds ? new Date(seconds * 1000).toLocaleString() : "never";
  }

  async function act(plural, name, method, action) {
    say("");
    const response = await api("/api/security/" + plural + "/" + encodeURIComponent(name) + (action ? "/" + action : ""), { method });
    if (!response.ok) say((await response.json().catch(() => ({}))).detail || response.statusText);
    await load(plural);
  }

  async function load(plural) {
    const body = document.querySelector("#" + plural + "-table tbody");
    let listed;
    try {
      listed = (await json("/api/security/" + plural))[plural];
    } catch (failure) {
      say(failure.message);
      return;
    }
    body.replaceChildren(...listed.map((entry) => el("tr", { dataset: { name: entry.name } },
      el("td", {}, entry.name),
      plural === "keys" ? el("td", { className: "mono" }, entry.prefix + "…") : null,
      el("td", {}, describeRoles(entry.roles)),
      plural === "keys" ? el("td", { className: "limits" }, describeLimits(entry.limits)) : null,
      plural === "keys" ? el("td", { className: "usage" }, describeUsage(entry.usage)) : null,
      el("td", {}, when(entry.last_used_at)),
      el("td", {}, el("span", { className: "badge" + (entry.disabled ? " error" : " ok") }, entry.disabled ? "disabled" : "active")),
      el("td", {},
        el("button", { type: "button", className: "secondary", onclick: () => act(plural, entry.name, "POST", entry.disabled ? "enable" : "disable") },
          entry.disabled ? "Enable" : "Disable"), " ",
        el("button", { type: "button", className: "secondary", onclick: () => confirm("Delete " + entry.name + "?") && act(plural, entry.name, "DELETE") }, "Delete")))));
    if (!listed.length) body.replaceChildren(el("tr", {}, el("td", { className: "muted", colSpan: 8 }, "None yet.")));
  }

  for (const form of document.querySelectorAll(".account-form")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      say("");
      const plural = form.dataset.plural;
      const data = Object.fromEntries(new FormData(form));
      if (!data.workspace) delete data.workspace;
      try {
        const made = await json("/api/security/" + plural, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data) });
        if (made.key) {
          document.getElementById("new-key-value").textContent = made.key;
          document.getElementById("new-key").hidden = false;
        }
        form.reset();
      } catch (failure) {
        say(failure.message);
      }
      await load(plural);
    });
  }

  load("keys");
  load("users");
})();
