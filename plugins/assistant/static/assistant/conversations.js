// The assistant's stored conversations: list them, read one, open its trace, delete it.
"use strict";

(function () {
  const { api, json, el } = window.plughost;
  const body = document.querySelector("#conversations tbody");
  const empty = document.getElementById("conversations-empty");
  const transcript = document.getElementById("transcript");
  const errorLine = document.getElementById("conversations-error");

  function showError(message) {
    errorLine.textContent = message;
    errorLine.hidden = !message;
  }

  function conversationUrl(id) {
    return "/api/assistant/conversations/" + encodeURIComponent(id);
  }

  async function show(id) {
    showError("");
    try {
      const conversation = await json(conversationUrl(id));
      transcript.replaceChildren(
        el("h2", {}, "Conversation " + id),
        ...conversation.messages.map((message) => el("div", { className: "assistant-message " + (message.role === "user" ? "user" : "answer") }, message.content)));
      transcript.hidden = false;
    } catch (error) {
      showError("Could not read the conversation: " + error.message);
    }
  }

  async function remove(id, row) {
    showError("");
    const response = await api(conversationUrl(id), { method: "DELETE" }).catch((error) => ({ ok: false, status: error.message }));
    if (!response.ok && response.status !== 404) {
      showError("Could not delete the conversation: " + response.status);
      return;
    }
    row.remove();
    if (transcript.dataset.id === id) transcript.hidden = true;
    empty.hidden = body.children.length > 0;
  }

  function row(conversation) {
    const line = el("tr", { dataset: { id: conversation.id } });
    line.append(
      el("td", {}, el("button", { type: "button", className: "secondary mono", title: "Show the questions and answers", onclick: () => { transcript.dataset.id = conversation.id; show(conversation.id); } }, conversation.id)),
      el("td", {}, el("a", { className: "mono", href: "/traces/" + encodeURIComponent(conversation.trace_id) }, conversation.trace_id)),
      el("td", {}, conversation.endpoint),
      el("td", {}, window.plughost.time(conversation.expires_at * 1000)),
      el("td", { className: "actions" }, el("button", { type: "button", className: "secondary", dataset: { requires: "editor" }, onclick: () => remove(conversation.id, line) }, "Delete")),
    );
    return line;
  }

  async function load() {
    try {
      const { conversations } = await json("/api/assistant/conversations");
      body.replaceChildren(...conversations.map(row));
      empty.hidden = conversations.length > 0;
    } catch (error) {
      showError("Could not list the conversations: " + error.message);
    }
    document.getElementById("conversations").dataset.ready = "true";
  }

  load();
})();
