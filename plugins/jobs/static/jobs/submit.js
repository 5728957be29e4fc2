// The submit form, generated from each job type's parameter JSON schema; errors shown at their field.
"use strict";

(function () {
  const { api, json, el } = window.plughost;
  const form = document.getElementById("submit-form");
  const select = document.getElementById("submit-type");
  const fieldsBox = document.getElementById("submit-fields");
  const formError = document.getElementById("submit-error");
  let types = new Map();

  function kind(schema) {
    const options = schema.anyOf ? schema.anyOf.map((option) => option.type).filter((type) => type !== "null") : [schema.type];
    return options.length === 1 ? options[0] : "json";
  }

  function field(name, schema, required) {
    const type = kind(schema);
    const title = (schema.title || name) + (required ? " *" : "");
    let input;
    if (type === "boolean") input = el("input", { type: "checkbox", name, checked: schema.default === true });
    else if (type === "integer" || type === "number") input = el("input", { type: "number", name, step: type === "integer" ? "1" : "any", value: schema.default ?? "" });
    else if (type === "string") input = el("input", { name, value: schema.default ?? "", autocomplete: "off" });
    else input = el("textarea", { name, placeholder: "JSON", value: schema.default === undefined ? "" : JSON.stringify(schema.default) });
    input.dataset.kind = type;
    return el("label", { dataset: { field: name } }, title, input, schema.description ? el("span", { className: "muted" }, schema.description) : null, el("span", { className: "field-error" }));
  }

  function showType() {
    const type = types.get(select.value);
    fieldsBox.replaceChildren();
    document.getElementById("submit-description").textContent = type ? type.description || "" : "";
    if (!type) return;
    const schema = type.parameters || {};
    const required = new Set(schema.required || []);
    for (const [name, property] of Object.entries(schema.properties || {})) fieldsBox.append(field(name, property, required.has(name)));
  }

  function params() {
    const values = {};
    for (const input of fieldsBox.querySelectorAll("input, textarea")) {
      const name = input.name;
      if (input.dataset.kind === "boolean") values[name] = input.checked;
      else if (input.value === "") continue;
      else if (input.dataset.kind === "integer" || input.dataset.kind === "number") values[name] = Number(input.value);
      else if (input.dataset.kind === "json") {
        try { values[name] = JSON.parse(input.value); } catch (error) { throw { field: name, problem: "not valid JSON" }; }
      } else values[name] = input.value;
    }
    return values;
  }

  function markErrors(errors) {
    for (const slot of fieldsBox.querySelectorAll(".field-error")) slot.textContent = "";
    const unplaced = [];
    for (const error of errors) {
      const name = String(error.field || "").replace(/^params\./, "").split(".")[0];
      const slot = fieldsBox.querySelector('label[data-field="' + CSS.escape(name) + '"] .field-error');
      if (slot) slot.textContent = error.problem; else unplaced.push((error.field ? error.field + ": " : "") + error.problem);
    }
    formError.textContent = unplaced.join("; ");
    formError.hidden = !unplaced.length;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let body;
    try {
      body = { type: select.value, params: params() };
    } catch (error) {
      markErrors([error]);
      return;
    }
    const response = await api("/api/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const answer = await response.json().catch(() => ({}));
    if (response.ok) {
      window.location.href = "/jobs/" + encodeURIComponent(answer.id);
      return;
    }
    const detail = answer.detail;
    if (detail && Array.isArray(detail.errors)) markErrors(detail.errors);
    else if (Array.isArray(detail)) markErrors(detail.map((item) => ({ field: (item.loc || []).slice(1).join("."), problem: item.msg })));
    else markErrors([{ problem: response.status + " " + (typeof detail === "string" ? detail : response.statusText) }]);
  });

  select.addEventListener("change", showType);
  json("/api/jobs/types").then((answer) => {
    types = new Map(answer.types.map((type) => [type.name, type]));
    select.replaceChildren(...answer.types.map((type) => el("option", { value: type.name }, type.name)));
    showType();
  }, (error) => markErrors([{ problem: error.message }]));
})();
