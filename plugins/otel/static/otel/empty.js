// The trace list with no traces yet: a curl command that sends one (OTLP/JSON, fresh ids and times),
// and where to point an OpenTelemetry exporter.
"use strict";

(function () {
  const { el, emptyState, workspace } = window.plughost;

  function hex(digits) {
    const bytes = crypto.getRandomValues(new Uint8Array(digits / 2));
    return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
  }

  function firstTraceSnippet() {
    const end = BigInt(Date.now()) * 1000000n;
    const span = { traceId: hex(32), spanId: hex(16), name: "hello", kind: 2, startTimeUnixNano: String(end - 250000000n), endTimeUnixNano: String(end) };
    const body = { resourceSpans: [{ resource: { attributes: [{ key: "service.name", value: { stringValue: "hello" } }] }, scopeSpans: [{ spans: [span] }] }] };
    return "curl -X POST " + window.location.origin + "/v1/traces \\\n  -H 'Content-Type: application/json' \\\n" +
      (workspace() === "default" ? "" : "  -H 'X-Plughost-Workspace: " + workspace() + "' \\\n") + "  -d '" + JSON.stringify(body) + "'";
  }

  window.otelEmpty = function () {
    const box = emptyState("No traces yet",
      "Point any OpenTelemetry exporter at " + window.location.origin + " (OTLP/HTTP) or at the OTLP/gRPC address in the start-up log, or send a first trace from a terminal:",
      firstTraceSnippet());
    box.append(el("p", { className: "muted" }, "The README's Getting started has the Python SDK and an OpenInference example."));
    return box;
  };
})();
