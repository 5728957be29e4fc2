// Models: a provider, the provider's model name and the secret to call it with.
"use strict";

(function () {
  const { json, el } = window.plughost;
  const { configPage, when } = window.plughostGateway;

  configPage({
    kind: "models",
    singular: "model",
    empty: "No models yet. A model names a provider's model and the secret to call it with; create a secret first.",
    field400: "secret",
    columns: (model) => [model.name, model.provider, model.model, model.secret, when(model.created_at)],
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
    },
    body: (form) => ({ provider: form.elements.provider.value, model: form.elements.model.value.trim(), secret: form.elements.secret.value }),
  });
})();
