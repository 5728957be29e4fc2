// Models: a provider, the provider's model name, the secret to call it with, and an optional price of its own.
"use strict";

(function () {
  const { json, el } = window.plughost;
  const { configPage, when, dollars } = window.plughostGateway;
  const price = (model) => (model.input_cost_per_mtok === null ? "genai-prices"
    : dollars(model.input_cost_per_mtok) + " / " + dollars(model.output_cost_per_mtok));
  const number = (input) => (input.value.trim() === "" ? null : Number(input.value));

  configPage({
    kind: "models",
    singular: "model",
    empty: "No models yet. A model names a provider's model and the secret to call it with; create a secret first.",
    field400: "secret",
    columns: (model) => [model.name, model.provider, model.model, model.secret, price(model), when(model.created_at)],
    async prepare() {
      const select = document.querySelector('#gw-form select[name="secret"]');
      const secrets = await json("/api/gateway/secrets");
      select.replaceChildren(...secrets.map((secret) => el("option", { value: secret.name }, secret.name + " (" + secret.key_hint + ")")));
      if (!secrets.length) select.append(el("option", { value: "", disabled: true, selected: true }, "no secrets: create one first"));
    },
    fill(form, model) {
      if (!model) return;
      form.elements.provider.value = model.provider;
      form.elements.model.value = model.model;
      form.elements.secret.value = model.secret;
      form.elements.input_cost_per_mtok.value = model.input_cost_per_mtok ?? "";
      form.elements.output_cost_per_mtok.value = model.output_cost_per_mtok ?? "";
    },
    body: (form) => ({
      provider: form.elements.provider.value, model: form.elements.model.value.trim(), secret: form.elements.secret.value,
      input_cost_per_mtok: number(form.elements.input_cost_per_mtok), output_cost_per_mtok: number(form.elements.output_cost_per_mtok),
    }),
  });
})();
