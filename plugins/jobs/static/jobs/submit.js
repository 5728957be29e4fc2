// The submit form, generated from each job type's parameter JSON schema with a widget per kind of
// field: a select for an enum, a date-time picker, a number field with its bounds, a checkbox, a
// key/value editor for an object of strings, JSON only for what has no simpler form. Labels are the
// fields' titles (or their names made readable), descriptions are rendered markdown; errors are
// shown at their field.
"use strict";

(function () {
  const { api, json, el } = window.plughost;
  const { label, markdown } = window.plughostJobs;
  const form = document.getElementById("submit-form");
  const select = document.getElementById("submit-type");
  const fieldsBox = document.getElementById("submit-fields");
  const formError = document.getElementById("submit-error");
  let types = new Map();

  // The schema of a field without its "or null" option; {nullable} says whether null was one.
  function unwrap(schema) {
    if (!schema.anyOf) return { schema, nullable: false };
    const options = schema.anyOf.filter((option) => option.type !== "null");
    if (options.length !== 1) return { schema, nullable: true };
    return { schema: Object.assign({}, options[0], { title: schema.title, description: schema.description, default: schema.default }), nullable: true };
  }

  // What widget a field gets: enum, datetime, integer, number, boolean, string, pairs (an object of strings), json.
  function kind(schema) {
    if (Array.isArray(schema.enum)) return "enum";
    if (schema.type === "string" && schema.format === "date-time") return "datetime";
    if (["integer", "number", "boolean", "string"].includes(schema.type)) return schema.type;
    if (schema.type === "object" && !schema.properties && schema.additionalProperties && ["string", "number", "integer"].includes(schema.additionalProperties.type)) return "pairs";
    return "json";
  }

  // A local date-time-picker value ("2026-12-06T13:05") for an ISO 8601 string, and back.
  function pickerValue(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    const pad = (number) => String(number).padStart(2, "0");
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) + "T" + pad(date.getHours()) + ":" + pad(date.getMinutes());
  }

  function pairRow(key, value) {
    const row = el("div", { className: "pair" },
      el("input", { className: "pair-key", placeholder: "name", value: key || "", autocomplete: "off", "aria-label": "name" }),
      el("input", { className: "pair-value", placeholder: "value", value: value ?? "", autocomplete: "off", "aria-label": "value" }),
      el("button", { type: "button", className: "secondary", title: "Remove", "aria-label": "Remove", onclick: () => row.remove() }, "\u00d7"));
    return row;
  }

  function pairsEditor(name, initial) {
    const rows = el("div", { className: "pair-rows" }, ...Object.entries(initial || {}).map(([key, value]) => pairRow(key, value)));
    return el("div", { className: "pairs", dataset: { name, kind: "pairs" } }, rows,
      el("button", { type: "button", className: "secondary", onclick: () => rows.append(pairRow()) }, "+ Add"));
  }

  // Suggestions a field declares with "x-plughost-options": {url, items, value, label} (e.g. the uploaded batch files).
  async function suggest(input, options) {
    const list = el("datalist", { id: "options-" + input.name });
    input.setAttribute("list", list.id);
    fieldsBox.append(list);
    try {
      const answer = await json(options.url);
      for (const item of (options.items ? answer[options.items] : answer) || []) {
        list.append(el("option", { value: item[options.value] }, options.label ? item[options.label] : ""));
      }
    } catch (error) { /* a typed value still works */ }
  }

  function widget(name, schema, required, nullable) {
    const type = kind(schema);
    const fallback = schema.default === null || schema.default === undefined ? undefined : schema.default;
    let input;
    if (type === "enum") {
      const choices = schema.enum.map((value) => el("option", { value: String(value), selected: value === fallback }, String(value)));
      input = el("select", { name }, required && !nullable ? null : el("option", { value: "" }, "\u2014 any \u2014"), ...choices);
    } else if (type === "datetime") {
      input = el("input", { type: "datetime-local", name, step: "1", value: pickerValue(fallback) });
    } else if (type === "integer" || type === "number") {
      input = el("input", { type: "number", name, value: fallback ?? "", step: type === "integer" ? "1" : "any" });
      const low = schema.minimum ?? schema.exclusiveMinimum;
      if (low !== undefined) input.min = String(low);
      if (schema.maximum !== undefined) input.max = String(schema.maximum);
    } else if (type === "boolean") {
      input = el("input", { type: "checkbox", name, checked: fallback === true });
    } else if (type === "string") {
      input = el("input", { name, value: fallback ?? "", autocomplete: "off", spellcheck: false });
      if (schema.pattern) input.placeholder = schema.pattern.replace(/^\^|\$$/g, "").replace(/\[0-9a-f\]\{(\d+)\}/, "<$1 hex digits>");
      if (schema["x-plughost-options"]) suggest(input, schema["x-plughost-options"]);
    } else if (type === "pairs") {
      return pairsEditor(name, fallback);
    } else {
      input = el("textarea", { name, placeholder: "JSON", value: fallback === undefined ? "" : JSON.stringify(fallback) });
    }
    input.dataset.kind = type;
    input.dataset.name = name;
    if (required) input.required = true;
    return input;
  }

  function field(name, property, required) {
    const { schema, nullable } = unwrap(property);
    const control = widget(name, schema, required, nullable);
    const bounds = [];
    if (schema.minimum !== undefined) bounds.push("\u2265 " + schema.minimum);
    if (schema.exclusiveMinimum !== undefined) bounds.push("> " + schema.exclusiveMinimum);
    if (schema.maximum !== undefined) bounds.push("\u2264 " + schema.maximum);
    const caption = el("span", { className: "field-label" }, label(name, schema.title), required ? el("span", { className: "required", title: "required" }, " *") : null,
      bounds.length ? el("span", { className: "muted" }, " (" + bounds.join(", ") + ")") : null);
    const type = kind(schema);
    let wrapper;
    if (type === "boolean") wrapper = el("label", { className: "check", dataset: { field: name } }, control, caption);
    else if (type === "pairs") wrapper = el("div", { className: "field", role: "group", "aria-label": label(name, schema.title), dataset: { field: name } }, caption, control);
    else wrapper = el("label", { dataset: { field: name } }, caption, control);
    if (schema.description) wrapper.append(el("span", { className: "muted description" }, ...markdown(schema.description)));
    wrapper.append(el("span", { className: "field-error" }));
    return wrapper;
  }

  function showType() {
    const type = types.get(select.value);
    fieldsBox.replaceChildren();
    document.getElementById("submit-description").replaceChildren(...(type ? markdown(type.description || "") : []));
    if (!type) return;
    const schema = type.parameters || {};
    const required = new Set(schema.required || []);
    for (const [name, property] of Object.entries(schema.properties || {})) fieldsBox.append(field(name, property, required.has(name)));
  }

  function params() {
    const values = {};
    for (const input of fieldsBox.querySelectorAll("input[data-kind], select[data-kind], textarea[data-kind]")) {
      const name = input.dataset.name;
      const type = input.dataset.kind;
      if (type === "boolean") values[name] = input.checked;
      else if (input.value === "") continue;
      else if (type === "integer" || type === "number") values[name] = Number(input.value);
      else if (type === "datetime") values[name] = new Date(input.value).toISOString();
      else if (type === "json") {
        try { values[name] = JSON.parse(input.value); } catch (error) { throw { field: name, problem: "not valid JSON" }; }
      } else values[name] = input.value;
    }
    for (const editor of fieldsBox.querySelectorAll(".pairs")) {
      const pairs = {};
      for (const row of editor.querySelectorAll(".pair")) {
        const key = row.querySelector(".pair-key").value.trim();
        if (key) pairs[key] = row.querySelector(".pair-value").value;
      }
      values[editor.dataset.name] = pairs;
    }
    return values;
  }

  function markErrors(errors) {
    for (const slot of fieldsBox.querySelectorAll(".field-error")) slot.textContent = "";
    const unplaced = [];
    for (const error of errors) {
      const name = String(error.field || "").replace(/^params\./, "").split(".")[0];
      const slot = fieldsBox.querySelector('[data-field="' + CSS.escape(name) + '"] .field-error');
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
    const wanted = new URLSearchParams(window.location.search).get("submit");
    if (wanted && types.has(wanted)) {
      select.value = wanted;
      document.getElementById("submit-job").open = true;
    }
    showType();
  }, (error) => markErrors([{ problem: error.message }]));
})();
