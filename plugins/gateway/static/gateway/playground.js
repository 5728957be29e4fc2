// The playground: chat with an endpoint through the OpenAI-compatible route, the answer streamed
// in as it arrives; Stop aborts it, Clear forgets the conversation (kept in the page only).
"use strict";

(function () {
  const { api, json, el, events } = window.plughost;
  const select = document.getElementById("gw-endpoint");
  const conversation = document.getElementById("gw-conversation");
  const emptyNote = document.getElementById("gw-chat-empty");
  const form = document.getElementById("gw-chat-form");
  const input = document.getElementById("gw-input");
  const send = document.getElementById("gw-send");
  const stop = document.getElementById("gw-stop");
  let history = [];
  let running = null;

  function turn(role, text) {
    emptyNote.hidden = true;
    const node = el("div", { className: "gw-turn " + role, dataset: { role } }, el("span", { className: "gw-text" }, text));
    conversation.append(node);
    return node;
  }

  function note(node, text) {
    node.append(el("span", { className: "gw-note" }, text));
  }

  function errorOf(body, response) {
    const detail = body && ((body.error && body.error.message) || body.detail);
    return response.status + " " + (typeof detail === "string" ? detail : response.statusText);
  }

  // Reads the SSE answer into ``node``; returns the text received (all of it, or up to Stop).
  async function stream(response, node) {
    const text = node.querySelector(".gw-text");
    let answer = "";
    for await (const { event, data } of events(response)) {
      if (data === "[DONE]") break;
      const chunk = JSON.parse(data);
      if (event === "error") throw new Error((chunk.error && chunk.error.message) || "the stream failed");
      if (chunk.usage) note(node, chunk.usage.prompt_tokens + " input · " + chunk.usage.completion_tokens + " output tokens");
      for (const choice of chunk.choices || []) {
        const piece = (choice.delta && choice.delta.content) || "";
        answer += piece;
        text.textContent = answer;
      }
    }
    return answer;
  }

  function busy(controller) {
    running = controller;
    send.disabled = Boolean(controller) || !select.value;
    stop.disabled = !controller;
  }

  async function ask(message) {
    const controller = new AbortController();
    const started = history;
    history.push({ role: "user", content: message });
    const asked = turn("user", message);
    const reply = turn("assistant", "");
    reply.classList.add("streaming");
    busy(controller);
    let answer = "";
    try {
      const response = await api("/gateway/v1/chat/completions", {
        method: "POST", headers: { "Content-Type": "application/json" }, signal: controller.signal,
        body: JSON.stringify({ model: select.value, messages: history, stream: true, stream_options: { include_usage: true } }),
      });
      if (!response.ok) throw new Error(errorOf(await response.json().catch(() => null), response));
      answer = await stream(response, reply);
    } catch (error) {
      answer = reply.querySelector(".gw-text").textContent;
      if (controller.signal.aborted) note(reply, "stopped");
      else {
        reply.classList.add("failed");
        note(reply, error.message);
      }
    } finally {
      reply.classList.remove("streaming");
      if (running === controller) busy(null);
    }
    if (history !== started) return;  // cleared meanwhile
    if (answer) history.push({ role: "assistant", content: answer });
    else {
      history.pop();  // nothing came back: the question is not part of the conversation
      note(asked, "not sent with the next turn");
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const message = input.value.trim();
    if (!message || running || !select.value) return;
    input.value = "";
    ask(message);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  stop.addEventListener("click", () => { if (running) running.abort(); });
  document.getElementById("gw-clear").addEventListener("click", () => {
    if (running) running.abort();
    history = [];
    conversation.replaceChildren(emptyNote);
    emptyNote.hidden = false;
  });

  json("/api/gateway/endpoints").then((endpoints) => {
    const wanted = new URLSearchParams(window.location.search).get("endpoint");
    select.replaceChildren(...endpoints.map((endpoint) => el("option", { value: endpoint.name }, endpoint.name)));
    if (wanted && endpoints.some((endpoint) => endpoint.name === wanted)) select.value = wanted;
    select.addEventListener("change", () => {  // the chosen endpoint stays in the URL (?endpoint=)
      const url = new URL(window.location.href);
      url.searchParams.set("endpoint", select.value);
      window.history.replaceState(null, "", url.pathname + url.search);
    });
    document.getElementById("gw-no-endpoints").hidden = endpoints.length > 0;
    busy(null);
  }, (error) => window.plughostGateway.showMessage(error.message, true));
})();
