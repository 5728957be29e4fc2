// The assistant on a trace's page: loaded on every console page, it acts only when the trace
// view announces itself with "plughost:trace-view". Analyze runs the offline analysis and
// marks the critical path on the waterfall; Explain streams an LLM's explanation (SSE) with
// follow-up questions and a Stop button.
"use strict";

(function () {
  const { api, json, el, events, describe } = window.plughost;
  const CRITICAL = "assistant-critical";
  const REPEATED = "assistant-repeated";
  const JSON_HEADERS = { "Content-Type": "application/json" };

  function duration(ms) {
    if (ms < 1) return (ms * 1000).toFixed(0) + " µs";
    if (ms < 1000) return ms.toFixed(ms < 10 ? 2 : 1) + " ms";
    return (ms / 1000).toFixed(2) + " s";
  }

  // "#<span id>" makes the trace view open that span; the same link twice still opens it.
  function spanLink(text, spanId, onFollow) {
    return el("a", {
      href: "#" + spanId,
      onclick: (event) => {
        if (onFollow) onFollow();
        if (location.hash !== "#" + spanId) return;
        event.preventDefault();
        window.dispatchEvent(new HashChangeEvent("hashchange"));
      },
    }, text);
  }

  function list(id, items, render) {
    return items.length ? el("ul", { id }, ...items.map((item) => el("li", {}, ...render(item))))
      : el("p", { id, className: "muted" }, "none");
  }

  async function failure(response) {
    const body = await response.json().catch(() => null);
    return new Error(response.status + " " + describe(body && body.detail, response.statusText));
  }

  // view: what the trace view announces (see the README); its `spans` are made when first read.
  function attach(view) {
    const { traceId, panel, highlight } = view;
    const analyzeButton = el("button", { type: "button", id: "assistant-analyze" }, "Analyze");
    const explainButton = el("button", { type: "button", id: "assistant-explain", className: "secondary" }, "Explain");
    const stopButton = el("button", { type: "button", id: "assistant-stop", className: "secondary", hidden: true }, "Stop");
    const errorLine = el("p", { id: "assistant-error", className: "error", role: "alert", hidden: true });
    const analysisBox = el("div", { id: "assistant-analysis", hidden: true });
    const transcript = el("div", { id: "assistant-transcript", className: "assistant-transcript", "aria-live": "polite" });
    const question = el("input", { id: "assistant-question", name: "question", autocomplete: "off", placeholder: "Ask a follow-up question", maxLength: 4000, required: true });
    const askForm = el("form", { id: "assistant-ask", className: "assistant-ask", hidden: true },
      el("label", { htmlFor: "assistant-question", className: "visually-hidden" }, "Follow-up question"),
      question, el("button", { type: "submit" }, "Ask"));
    const status = el("span", { id: "assistant-status", className: "muted" });
    // The LLM endpoint for Explain: empty means the server's default (PLUGHOST_ASSISTANT_ENDPOINT).
    const endpointInput = el("input", { id: "assistant-endpoint", name: "endpoint", autocomplete: "off", placeholder: "server default", size: 16 });
    endpointInput.setAttribute("list", "assistant-endpoints");
    const endpointOptions = el("datalist", { id: "assistant-endpoints" });
    const endpointField = el("label", { className: "assistant-endpoint" }, "Endpoint ", endpointInput, endpointOptions);
    panel.append(el("section", { className: "assistant-panel", id: "assistant", "aria-label": "Assistant", dataset: { requires: "editor" } },
      el("div", { className: "assistant-head" },
        el("h2", {}, "Assistant"),
        el("div", { className: "assistant-actions" }, status, stopButton, endpointField, explainButton, analyzeButton)),
      errorLine, analysisBox, transcript, askForm));

    let conversationId = null;
    let controller = null;

    function showError(message) {
      errorLine.textContent = message;
      errorLine.hidden = !message;
    }

    function markRepeats(repeat) {
      const parents = new Set(repeat.parent_span_ids);
      highlight(view.spans.filter((span) => parents.has(span.parent_span_id) && span.name === repeat.name).map((span) => span.span_id), REPEATED);
    }

    // The critical path in a few lines: a sequential trace says so; otherwise its largest contributors.
    function pathSummary(result) {
      if (result.sequential) {
        highlight([], CRITICAL);
        return el("p", { id: "assistant-critical-path" },
          "Sequential: nothing ran in parallel, so the critical path is the whole trace (" + duration(result.critical_path_ms) + ").");
      }
      const marked = highlight(result.critical_path.map((step) => step.span_id), CRITICAL);
      const segments = result.critical_path_segments;
      return el("div", { id: "assistant-critical-path" },
        el("p", {}, el("span", { className: "assistant-legend" }),
          "Critical path: " + duration(result.critical_path_ms) + " of " + duration(result.duration_ms)
          + " in " + segments.toLocaleString() + " segments (" + marked.toLocaleString() + " spans marked"
          + (segments > result.critical_path.length ? ", the " + result.critical_path.length.toLocaleString() + " longest segments" : "") + "), mostly:"),
        el("ul", { id: "assistant-path-contributors" }, ...result.critical_path_contributors.map((part) => el("li", {},
          part.name + " — " + (part.share * 100).toFixed(1) + "% (" + duration(part.duration_ms) + (part.segments > 1 ? " in " + part.segments.toLocaleString() + " segments" : "") + ")"))));
    }

    function repeatText(repeat) {
      return repeat.count.toLocaleString() + "× " + repeat.name;
    }

    // LLM calls at a glance (GenAI semantic conventions): totals, slow calls, repeated prompts, tool loops.
    function genaiSection(genai) {
      if (!genai || !genai.llm_call_count) return null;
      const totals = genai.llm_call_count + (genai.llm_call_count === 1 ? " LLM call" : " LLM calls")
        + (genai.models.length ? " (" + genai.models.join(", ") + ")" : "")
        + ": " + genai.input_tokens + " input and " + genai.output_tokens + " output tokens, "
        + duration(genai.llm_time_ms) + " (" + (genai.llm_share * 100).toFixed(1) + "% of the trace)"
        + (genai.cost !== null ? ", $" + genai.cost.toFixed(4) : "");
      return el("div", { id: "assistant-genai", className: "assistant-genai" },
        el("p", {}, totals),
        el("div", { className: "assistant-findings" },
          el("div", {}, el("h3", {}, "Slow LLM calls"), list("assistant-slow-llm", genai.slow_llm_calls, (call) =>
            [spanLink(call.name, call.span_id), " — " + (call.model || "unknown model") + ", " + duration(call.duration_ms)])),
          el("div", {}, el("h3", {}, "Repeated prompts"), list("assistant-repeated-prompts", genai.repeated_prompts, (repeat) =>
            [repeat.count + "× ", spanLink(repeat.name, repeat.span_ids[0], () => highlight(repeat.span_ids, REPEATED)),
             (repeat.kind === "retry" ? " (retried after a failure)" : "") + (repeat.model ? " — " + repeat.model : "")])),
          el("div", {}, el("h3", {}, "Tool loops"), list("assistant-tool-loops", genai.tool_loops, (loop) =>
            [loop.count + "× " + loop.tool + " with the same arguments"]))));
    }

    function showAnalysis(result) {
      highlight([], REPEATED);
      analysisBox.replaceChildren(
        pathSummary(result),
        el("div", { className: "assistant-findings" },
          el("div", {}, el("h3", {}, "Slowest spans (self time)"), list("assistant-slow", result.slowest_spans, (span) =>
            [spanLink(span.name, span.span_id), span.count > 1
              ? " ×" + span.count.toLocaleString() + " — " + duration(span.self_ms) + " in all (" + (span.share * 100).toFixed(1) + "%), at most " + duration(span.max_ms)
              : " — " + duration(span.self_ms) + " (" + (span.share * 100).toFixed(1) + "%)"])),
          el("div", {}, el("h3", {}, "Errors"), list("assistant-errors", result.errors, (error) =>
            [spanLink(error.name, error.span_id), ": " + ([error.message, ...error.exceptions].filter(Boolean).join("; ") || "error")])),
          el("div", {}, el("h3", {}, "Repeated calls (N+1)"), list("assistant-repeats", result.repeated_calls, (repeat) => [
            repeatText(repeat),
            ...(repeat.parent_span_id ? [" under ", repeat.parents > 1 ? repeat.parents.toLocaleString() + " × " : "",
              spanLink(repeat.parent_name, repeat.parent_span_id, () => markRepeats(repeat))] : []),
            " — " + duration(repeat.total_ms) + (repeat.parents > 1 ? " in all" : "")]))),
        ...[genaiSection(result.genai)].filter(Boolean));
      analysisBox.hidden = false;
    }

    async function analyze() {
      analyzeButton.disabled = true;
      status.textContent = "Analyzing…";
      showError("");
      try {
        showAnalysis(await json("/api/assistant/analyze", { method: "POST", headers: JSON_HEADERS, body: JSON.stringify({ trace_id: traceId }) }));
        status.textContent = "";
      } catch (error) {
        status.textContent = "";
        showError("Analysis failed: " + error.message);
      }
      analyzeButton.disabled = false;
    }

    function busy(on) {
      explainButton.disabled = on;
      stopButton.hidden = !on;
      for (const control of askForm.elements) control.disabled = on;
    }

    // One question and its streamed answer, appended to the transcript.
    async function converse(body, asked) {
      controller = new AbortController();
      busy(true);
      showError("");
      status.textContent = "Explaining…";
      if (asked) transcript.append(el("div", { className: "assistant-message user" }, asked));
      const answer = el("div", { className: "assistant-message answer streaming" });
      transcript.append(answer);
      try {
        const response = await api("/api/assistant/explain", { method: "POST", headers: JSON_HEADERS, body: JSON.stringify(body), signal: controller.signal });
        if (!response.ok) throw await failure(response);
        for await (const message of events(response)) {
          const { event } = message;
          const data = JSON.parse(message.data);
          if (event === "analysis") showAnalysis(data);
          else if (event === "delta") answer.append(data.text);
          else if (event === "error") throw new Error(data.detail);
          else if (event === "done") {
            conversationId = data.conversation_id;
            askForm.hidden = false;
          }
        }
        status.textContent = "";
      } catch (error) {
        if (error.name === "AbortError") {
          status.textContent = "Stopped.";
          answer.append(el("span", { className: "muted" }, " (stopped)"));
        } else {
          status.textContent = "";
          showError("Explain failed: " + error.message + (body.trace_id ? " — the offline analysis (Analyze) works without an LLM." : ""));
        }
      } finally {
        answer.classList.remove("streaming");
        if (!answer.childNodes.length) answer.remove();
        controller = null;
        busy(false);
      }
    }

    // Offer the gateway's endpoints (its OpenAI-compatible model list) when the gateway answers.
    api("/gateway/v1/models")
      .then((response) => (response.ok ? response.json() : null))
      .then((body) => {
        for (const model of (body && body.data) || []) endpointOptions.append(el("option", { value: model.id }));
      })
      .catch(() => {});

    analyzeButton.addEventListener("click", analyze);
    explainButton.addEventListener("click", () => {
      conversationId = null;
      askForm.hidden = true;
      transcript.replaceChildren();
      const endpoint = endpointInput.value.trim();
      converse(endpoint ? { trace_id: traceId, endpoint } : { trace_id: traceId });
    });
    stopButton.addEventListener("click", () => { if (controller) controller.abort(); });
    askForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = question.value.trim();
      if (!text || !conversationId) return;
      question.value = "";
      converse({ conversation_id: conversationId, question: text }, text);
    });
  }

  document.addEventListener("plughost:trace-view", (event) => attach(event.detail));
})();
