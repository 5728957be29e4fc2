// Endpoints: models with weights, in fallback order (rows can be added, moved up and removed).
"use strict";

(function () {
  const { json, el } = window.plughost;
  const { configPage, when } = window.plughostGateway;
  const memberRows = document.getElementById("gw-member-rows");
  let modelNames = [];

  function memberRow(member) {
    const select = el("select", { className: "gw-member-model", "aria-label": "Model" },
      ...modelNames.map((name) => el("option", { value: name }, name)));
    if (!modelNames.length) select.append(el("option", { value: "", disabled: true, selected: true }, "no models: create one first"));
    if (member) select.value = member.model;
    const weight = el("input", { type: "number", className: "gw-member-weight", min: "1", max: "1000", step: "1", value: member ? member.weight : 1, "aria-label": "Weight" });
    const up = el("button", { type: "button", className: "secondary", title: "Try earlier" }, "↑");
    const remove = el("button", { type: "button", className: "secondary" }, "Remove");
    const line = el("div", { className: "gw-member" }, select, el("span", { className: "muted" }, "weight"), weight, up, remove);
    up.addEventListener("click", () => { if (line.previousElementSibling) memberRows.insertBefore(line, line.previousElementSibling); });
    remove.addEventListener("click", () => line.remove());
    return line;
  }

  document.getElementById("gw-add-member").addEventListener("click", () => memberRows.append(memberRow(null)));

  configPage({
    kind: "endpoints",
    singular: "endpoint",
    empty: "No endpoints yet",
    snippetText: "An endpoint is what clients call; it routes over one or more models. To try the gateway without a " +
      "provider account, start the fake provider llmock (pip install llmock; llmock serve --port 9100), start plughost " +
      "with PLUGHOST_GATEWAY_ALLOW_PRIVATE=1, then create a secret, a model and an endpoint, and call it:",
    snippet() {
      const base = window.location.origin;
      const headers = "-H 'Content-Type: application/json'" + (window.plughost.workspace() === "default" ? "" : " -H 'X-Plughost-Workspace: " + window.plughost.workspace() + "'");
      return [
        "curl -s " + base + "/api/gateway/secrets " + headers + " \\\n  -d '{\"name\": \"llmock\", \"api_key\": \"sk-anything\", \"base_url\": \"http://127.0.0.1:9100/v1\"}'",
        "curl -s " + base + "/api/gateway/models " + headers + " \\\n  -d '{\"name\": \"mock-gpt\", \"provider\": \"openai\", \"model\": \"gpt-4o-mini\", \"secret\": \"llmock\"}'",
        "curl -s " + base + "/api/gateway/endpoints " + headers + " \\\n  -d '{\"name\": \"chat\", \"models\": [{\"model\": \"mock-gpt\"}]}'",
        "curl -s " + base + "/gateway/v1/chat/completions " + headers + " \\\n  -d '{\"model\": \"chat\", \"messages\": [{\"role\": \"user\", \"content\": \"Hello!\"}]}'",
      ].join("\n");
    },
    field400: "models",
    columns: (endpoint) => [
      el("span", {}, endpoint.name, " ", el("a", { href: "/gateway/playground?endpoint=" + encodeURIComponent(endpoint.name), className: "gw-try" }, "try")),
      endpoint.models.map((member) => member.model + " (" + member.weight + ")").join(" → "),
      when(endpoint.created_at),
    ],
    async prepare() {
      modelNames = (await json("/api/gateway/models")).map((model) => model.name);
    },
    fill(form, endpoint) {
      memberRows.replaceChildren(...(endpoint ? endpoint.models : [null]).map(memberRow));
    },
    body: () => ({
      models: Array.from(memberRows.children, (line) => ({
        model: line.querySelector(".gw-member-model").value,
        weight: Number(line.querySelector(".gw-member-weight").value),
      })),
    }),
  });
})();
