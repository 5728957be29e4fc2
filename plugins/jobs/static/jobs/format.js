// What the job pages share: readable labels for parameter and result fields, and the small
// markdown of job-type and field descriptions, rendered as DOM nodes (text is never parsed as HTML).
"use strict";

(function () {
  const { el } = window.plughost;
  const UNITS = { ms: "ms", us: "µs", usd: "USD", seconds: "seconds", bytes: "bytes" };
  const ACRONYMS = { id: "ID", ids: "IDs", url: "URL", llm: "LLM" };
  const LEADING = { min: "Minimum", max: "Maximum" };

  // The label of a field: its schema title, unless it is only the name title-cased (pydantic's
  // default, "Min Duration Ms"): then the name made readable ("Minimum duration (ms)").
  function label(name, title) {
    const automatic = name.split("_").map((word) => word.charAt(0).toUpperCase() + word.slice(1)).join(" ");
    if (title && title !== automatic) return title;
    const words = name.split("_").filter(Boolean);
    const unit = words.length > 1 && UNITS[words[words.length - 1]] ? UNITS[words.pop()] : null;
    const text = words.map((word, index) => ACRONYMS[word] || (index ? word : LEADING[word] || word.charAt(0).toUpperCase() + word.slice(1))).join(" ");
    return unit ? text + " (" + unit + ")" : text;
  }

  const INLINE = /(`{1,2})([^`]+)\1|\*\*([^*]+)\*\*|\*([^*]+)\*|\[([^\]]+)\]\(((?:https?:\/\/|\/)[^)\s]*)\)/g;

  // Markdown of one description: `code`, **bold**, *emphasis*, [links](https://… or /path) and line
  // breaks, as nodes; anything else stays text.
  function markdown(text) {
    const nodes = [];
    String(text || "").split("\n").forEach((line, index) => {
      if (index) nodes.push(el("br"));
      let at = 0;
      for (const match of line.matchAll(INLINE)) {
        if (match.index > at) nodes.push(line.slice(at, match.index));
        if (match[2] !== undefined) nodes.push(el("code", {}, match[2]));
        else if (match[3] !== undefined) nodes.push(el("strong", {}, match[3]));
        else if (match[4] !== undefined) nodes.push(el("em", {}, match[4]));
        else nodes.push(el("a", { href: match[6], rel: "noopener noreferrer" }, match[5]));
        at = match.index + match[0].length;
      }
      if (at < line.length) nodes.push(line.slice(at));
    });
    return nodes;
  }

  window.plughostJobs = Object.assign(window.plughostJobs || {}, { label, markdown, renderers: {} });
})();
