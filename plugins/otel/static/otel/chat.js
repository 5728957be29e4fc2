// The conversation of an LLM call, as a chat: its input and output messages (the span's `genai` view, one
// shape whatever convention carried them). Roles, text, tool calls with their arguments, tool results, and
// images as thumbnails (inline `data:` images only: a remote image is shown as its address, never fetched).
// Everything is set as text, never as HTML; long content folds.
"use strict";

window.otelChat = (function () {
  const { el } = window.plughost;
  const FOLD_CHARS = 600;

  function asText(value) {
    if (value === null || value === undefined) return "";
    return typeof value === "string" ? value : JSON.stringify(value, null, 2);
  }

  // Text that folds past FOLD_CHARS: the start shows, the rest opens on a click.
  function foldable(text, className) {
    if (text.length <= FOLD_CHARS) return el("div", { className }, text);
    return el("details", { className: className + " folded" },
      el("summary", {}, text.slice(0, FOLD_CHARS) + "… (" + text.length.toLocaleString() + " characters)"),
      el("div", {}, text));
  }

  function image(url) {
    if (typeof url === "string" && url.startsWith("data:image/")) {
      return el("a", { className: "chat-image", href: url, target: "_blank", rel: "noopener" },
        el("img", { src: url, alt: "image" }));
    }
    return el("div", { className: "chat-image-url mono" }, "image " + (url || "(not captured)"));
  }

  function part(piece) {
    if (piece.type === "text" || piece.type === "reasoning") return foldable(asText(piece.content), "chat-text " + piece.type);
    if (piece.type === "tool_call") {
      return el("div", { className: "chat-tool-call" },
        el("div", {}, el("span", { className: "muted" }, "calls "), el("strong", { className: "mono" }, piece.name || "?"),
          piece.id ? el("span", { className: "muted mono" }, " " + piece.id) : null),
        foldable(asText(piece.arguments), "chat-code mono"));
    }
    if (piece.type === "tool_call_response") {
      return el("div", { className: "chat-tool-result" },
        el("div", { className: "muted" }, "result" + (piece.id ? " of " + piece.id : "")),
        foldable(asText(piece.response), "chat-code mono"));
    }
    if (piece.type === "image") return image(piece.url);
    return foldable(asText(piece.content), "chat-code mono");
  }

  function message(item) {
    const role = String(item.role || "user");
    return el("div", { className: "chat-message role-" + role.replace(/[^a-z_]/gi, "") },
      el("div", { className: "chat-role" }, role,
        item.finish_reason ? el("span", { className: "muted" }, " · " + item.finish_reason) : null),
      ...(item.parts || []).map(part));
  }

  // The "Conversation" section for a span's genai view, or null when it carries no messages.
  function render(genai) {
    if (!genai) return null;
    const inputs = genai.input_messages || [];
    const outputs = genai.output_messages || [];
    if (!inputs.length && !outputs.length) return null;
    return el("section", { className: "chat" },
      el("h3", {}, "Conversation"),
      ...inputs.map(message),
      outputs.length ? el("div", { className: "chat-answer-label muted" }, "answer") : null,
      ...outputs.map(message));
  }

  return { render };
})();
