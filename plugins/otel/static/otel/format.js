// Formatting shared by the trace pages.
"use strict";

window.otelFormat = {
  duration(ms) {
    if (ms === null || ms === undefined) return "";
    if (ms === 0) return "0";
    if (ms < 1) return (ms * 1000).toFixed(ms < 0.01 ? 2 : 0) + " µs";
    if (ms < 1000) return ms.toFixed(ms < 10 ? 2 : 1) + " ms";
    return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
  },
  time(nanos) {  // the console's one date format, to the millisecond
    return window.plughost.time(Number(nanos) / 1e6, { ms: true });
  },
  count(value, noun) {
    return Number(value).toLocaleString() + " " + noun + (value === 1 ? "" : "s");
  },
  number(value) {
    return value === null || value === undefined ? "\u2014" : Number(value).toLocaleString();
  },
  // US dollars, with the digits a cheap call needs; "—" when no price is known.
  cost(usd) {
    if (usd === null || usd === undefined) return "—";
    if (usd === 0) return "$0";
    if (usd < 0.000001) return "<$0.000001";
    return "$" + usd.toFixed(usd >= 1 ? 2 : usd >= 0.01 ? 4 : 6);
  },
  // A count, or "—" when there is none.
  orDash(value) {
    return value === null || value === undefined ? "—" : Number(value).toLocaleString();
  },
  // A console URL that names the workspace, so the link shows the same thing to whoever opens it.
  url(path, params) {
    const query = new URLSearchParams(params || {});
    query.set("workspace", window.plughost.workspace());
    return path + "?" + query;
  },
  traceUrl(traceId) {
    return this.url("/traces/" + encodeURIComponent(traceId));
  },
  sessionUrl(sessionId) {
    return this.url("/sessions/" + encodeURIComponent(sessionId));
  },
};
