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
};
