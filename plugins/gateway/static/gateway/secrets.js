// Secrets: the key is write-only (a password input, never pre-filled; only its hint is listed).
"use strict";

(function () {
  const { configPage, when } = window.plughostGateway;
  const headerNames = document.getElementById("secret-header-names");

  function headers(text) {
    const found = {};
    text.split("\n").forEach((line, index) => {
      if (!line.trim()) return;
      const colon = line.indexOf(":");
      if (colon < 1) throw { field: "headers", problem: "line " + (index + 1) + ": write Name: value" };
      found[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
    });
    return found;
  }

  configPage({
    kind: "secrets",
    singular: "secret",
    empty: "No secrets yet. A secret holds a provider's API key; models call their provider with it.",
    field400: "base_url",
    columns: (secret) => [secret.name, secret.key_hint, secret.base_url || "provider default", secret.header_names.join(", "), when(secret.updated_at)],
    fill(form, secret) {
      form.elements.api_key.value = "";
      form.elements.base_url.value = secret && secret.base_url ? secret.base_url : "";
      const names = secret ? secret.header_names : [];
      headerNames.textContent = names.length ? "Stored headers: " + names.join(", ") + ". Saving replaces them: enter them again to keep them." : "";
      headerNames.hidden = !names.length;
    },
    body(form) {
      return { api_key: form.elements.api_key.value, base_url: form.elements.base_url.value.trim() || null, headers: headers(form.elements.headers.value) };
    },
  });
})();
