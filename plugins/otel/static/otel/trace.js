// The trace view: a waterfall of the spans (nested, to scale, collapsible) and a span panel.
// Once rendered it dispatches "plughost:trace-view" so that other plugins can add to the page;
// a link to "#<span id>" opens that span.
"use strict";

(function () {
  const { api, json, el } = window.plughost;
  const fmt = window.otelFormat;
  const traceId = document.getElementById("trace").dataset.traceId;
  const rowsBox = document.getElementById("rows");
  const panel = document.getElementById("span-panel");
  const ERROR = "STATUS_CODE_ERROR";

  let spans = [];        // in waterfall order (depth first, children by start time)
  let subtreeEnd = [];   // spans[i]'s subtree is spans[i .. subtreeEnd[i])
  let rows = [];         // the row element of spans[i]
  const collapsed = new Set();
  const indexById = new Map();

  // An attribute key with a line-break opportunity after each dot: "gen_ai.usage.<wbr>input_tokens".
  function breakable(key) {
    return key.split(".").flatMap((part, index, parts) => (index < parts.length - 1 ? [part + ".", el("wbr")] : [part]));
  }

  function showError(message) {
    const line = document.getElementById("trace-error");
    line.textContent = message;
    line.hidden = false;
  }

  // Depth-first order with each span's depth; a span whose parent is absent is a root.
  function order(all) {
    const byId = new Map(all.map((span) => [span.span_id, span]));
    const children = new Map();
    const roots = [];
    for (const span of all) {
      const parent = span.parent_span_id;
      if (parent && parent !== span.span_id && byId.has(parent)) {
        if (!children.has(parent)) children.set(parent, []);
        children.get(parent).push(span);
      } else roots.push(span);
    }
    const byStart = (a, b) => a.start_time_unix_nano - b.start_time_unix_nano;
    const ordered = [];
    const ends = [];
    const depths = [];
    const stack = roots.sort(byStart).reverse().map((span) => [span, 0, false]);
    while (stack.length) {
      const [span, depth, done] = stack.pop();
      if (done) { ends[indexById.get(span.span_id)] = ordered.length; continue; }
      indexById.set(span.span_id, ordered.length);
      ordered.push(span);
      depths.push(depth);
      stack.push([span, depth, true]);
      const kids = (children.get(span.span_id) || []).sort(byStart);
      for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i], depth + 1, false]);
    }
    return { ordered, ends, depths };
  }

  function niceStep(total, count) {
    const raw = total / count;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const factor of [1, 2, 2.5, 5, 10]) if (raw <= factor * power) return factor * power;
    return 10 * power;
  }

  function drawAxis(totalMs) {
    const ticks = document.getElementById("ticks");
    const step = niceStep(Math.max(totalMs, 0.001), 6);
    const marks = [];
    for (let at = 0; at <= totalMs + step / 1000; at += step) {
      marks.push(el("span", { className: "tick", style: "left:" + (at / totalMs * 100) + "%" }, fmt.duration(at)));
    }
    ticks.replaceChildren(...marks);
  }

  function isError(span) {
    return span.status.code === ERROR || span.events.some((event) => event.name === "exception");
  }

  function drawRows(depths, start, totalNs) {
    const fragment = document.createDocumentFragment();
    rows = new Array(spans.length);
    for (let i = 0; i < spans.length; i++) {
      const span = spans[i];
      const hasChildren = subtreeEnd[i] > i + 1;
      const left = (span.start_time_unix_nano - start) / totalNs * 100;
      const width = Math.max((span.end_time_unix_nano - span.start_time_unix_nano) / totalNs * 100, 0.15);
      const model = span.attributes["gen_ai.request.model"] || span.attributes["gen_ai.response.model"];
      const label = el("div", { className: "label", style: "padding-left:" + (8 + depths[i] * 14) + "px" },
        hasChildren
          ? el("button", { type: "button", className: "toggle", title: "Collapse", "aria-expanded": "true", dataset: { index: i } }, "▾")
          : el("span", { className: "toggle-space" }),
        el("span", { className: "service" }, span.service_name || ""),
        el("span", { className: "name" }, span.name),
        model ? el("span", { className: "chip genai" }, model) : null,
      );
      const bar = el("div", { className: "bar", style: "left:" + left + "%;width:" + width + "%" });
      const duration = el("span", { className: "bar-label", style: left > 70 ? "right:" + (100 - left) + "%" : "left:" + (left + width) + "%" }, fmt.duration(span.duration_ms));
      const row = el("div", {
        className: "row" + (isError(span) ? " error" : ""), role: "treeitem", tabIndex: 0,
        dataset: { index: i, spanId: span.span_id },
      }, label, el("div", { className: "track" }, bar, duration));
      rows[i] = row;
      fragment.append(row);
    }
    rowsBox.replaceChildren(fragment);
  }

  function applyCollapsed() {
    for (let i = 0; i < spans.length;) {
      rows[i].hidden = false;
      if (collapsed.has(i)) {
        for (let j = i + 1; j < subtreeEnd[i]; j++) rows[j].hidden = true;
        i = subtreeEnd[i];
      } else i++;
    }
  }

  function toggle(index) {
    if (collapsed.has(index)) collapsed.delete(index); else collapsed.add(index);
    const button = rows[index].querySelector(".toggle");
    const open = !collapsed.has(index);
    button.textContent = open ? "▾" : "▸";
    button.title = open ? "Collapse" : "Expand";
    button.setAttribute("aria-expanded", String(open));
    applyCollapsed();
  }

  function valueText(value) {
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  function table(entries) {
    if (!entries.length) return el("p", { className: "muted" }, "none");
    return el("table", { className: "kv" }, el("tbody", {}, ...entries.map(([key, value]) =>
      el("tr", {}, el("th", {}, ...breakable(key)), el("td", { className: "mono" }, valueText(value))))));
  }

  function section(title, ...content) {
    return el("section", {}, el("h3", {}, title), ...content);
  }

  function linkItem(link) {
    const item = el("li", { className: "mono" }, link.trace_id + " / " + link.span_id);
    const sameTrace = link.trace_id === traceId;
    const check = sameTrace ? Promise.resolve(true)
      : api("/api/otel/traces/" + link.trace_id).then((response) => { response.body && response.body.cancel(); return response.ok; }, () => false);
    check.then((stored) => {
      if (!stored) { item.append(el("span", { className: "muted" }, " (not stored)")); return; }
      const anchor = el("a", { href: "/traces/" + encodeURIComponent(link.trace_id) + "#" + encodeURIComponent(link.span_id) }, link.trace_id + " / " + link.span_id);
      item.replaceChildren(anchor);
    });
    return item;
  }

  function openSpan(index) {
    const span = spans[index];
    for (const row of rowsBox.querySelectorAll(".row.selected")) row.classList.remove("selected");
    rows[index].classList.add("selected");
    const attrs = span.attributes;
    const genai = span.genai || {};  // the otel plugin's one reading of every LLM convention
    const model = genai.model;
    const exceptions = span.events.filter((event) => event.name === "exception");
    const others = span.events.filter((event) => event.name !== "exception");
    panel.replaceChildren(...[
      el("div", { className: "panel-head" },
        el("h2", {}, span.name),
        el("button", { type: "button", className: "secondary close", title: "Close", onclick: () => { panel.hidden = true; rows[index].classList.remove("selected"); } }, "×")),
      el("div", { className: "facts" },
        el("span", {}, span.service_name || ""),
        el("span", {}, span.kind.replace("SPAN_KIND_", "").toLowerCase()),
        el("span", {}, fmt.duration(span.duration_ms)),
        el("span", { className: "badge " + (isError(span) ? "error" : "ok") }, span.status.code.replace("STATUS_CODE_", "").toLowerCase()),
      ),
      span.status.message ? el("p", { className: "error" }, span.status.message) : null,
      model ? el("div", { className: "genai-facts" },
        el("div", {}, el("label", {}, "Model"), el("strong", {}, model)),
        el("div", {}, el("label", {}, "Input tokens"), el("strong", {}, fmt.number(genai.input_tokens))),
        el("div", {}, el("label", {}, "Output tokens"), el("strong", {}, fmt.number(genai.output_tokens)))) : null,
      window.otelChat.render(span.genai),
      el("p", { className: "mono muted ids" }, "span " + span.span_id + (span.parent_span_id ? " · parent " + span.parent_span_id : "")),
      section("Attributes", table(Object.entries(attrs))),
      exceptions.length ? section("Exceptions", ...exceptions.map((event) => el("div", { className: "exception" },
        el("strong", {}, (event.attributes["exception.type"] || "exception") + ": " + (event.attributes["exception.message"] || "")),
        event.attributes["exception.stacktrace"] ? el("pre", {}, event.attributes["exception.stacktrace"]) : null))) : null,
      section("Events", others.length ? el("ul", { className: "events" }, ...others.map((event) => el("li", {},
        el("span", { className: "mono muted" }, "+" + fmt.duration((event.time_unix_nano - span.start_time_unix_nano) / 1e6) + " "),
        el("strong", {}, event.name), table(Object.entries(event.attributes))))) : el("p", { className: "muted" }, "none")),
      section("Links", span.links.length ? el("ul", { className: "links" }, ...span.links.map(linkItem)) : el("p", { className: "muted" }, "none")),
      section("Resource", table(Object.entries(span.resource.attributes))),
      section("Scope", table([["name", span.scope.name], ["version", span.scope.version], ...Object.entries(span.scope.attributes)])),
    ].filter(Boolean));
    panel.hidden = false;
  }

  function spanIndex(spanId) {
    return indexById.has(spanId) ? indexById.get(spanId) : -1;
  }

  function reveal(index) {
    // Expand collapsed ancestors so the span's row shows, then open it.
    for (const folded of [...collapsed]) if (folded < index && index < subtreeEnd[folded]) toggle(folded);
    rows[index].scrollIntoView({ block: "nearest" });
    openSpan(index);
  }

  // Marks the rows of spanIds with className (and clears it from every other row); the count of rows marked.
  function highlight(spanIds, className) {
    for (const row of rowsBox.querySelectorAll("." + CSS.escape(className))) row.classList.remove(className);
    let marked = 0;
    for (const spanId of new Set(spanIds)) {
      const index = spanIndex(spanId);
      if (index >= 0) { rows[index].classList.add(className); marked++; }
    }
    return marked;
  }

  // Other plugins' scripts (console page "scripts") add to this page through this event.
  function announce() {
    document.dispatchEvent(new CustomEvent("plughost:trace-view", {
      detail: { traceId, spans: spans.slice(), panel: document.getElementById("trace-extensions"), highlight },
    }));
  }

  function revealHash() {
    const wanted = spanIndex(decodeURIComponent(location.hash.slice(1)));
    if (wanted >= 0) reveal(wanted);
  }

  async function load() {
    let trace;
    try {
      trace = await json("/api/otel/traces/" + encodeURIComponent(traceId));
    } catch (error) {
      showError(error.message);
      return;
    }
    const { ordered, ends, depths } = order(trace.spans);
    spans = ordered;
    subtreeEnd = ends;
    const start = Math.min(...spans.map((span) => span.start_time_unix_nano));
    const end = Math.max(...spans.map((span) => span.end_time_unix_nano));
    const totalNs = Math.max(end - start, 1);
    document.getElementById("trace-title").textContent = trace.root_name || "Trace";
    const tokens = (trace.input_tokens || 0) + (trace.output_tokens || 0);
    document.getElementById("trace-facts").replaceChildren(...[
      el("span", { className: "mono" }, traceId),
      el("span", {}, trace.service_name || ""),
      el("span", {}, fmt.time(trace.start_time_unix_nano)),
      el("span", {}, fmt.duration(trace.duration_ms)),
      el("span", {}, fmt.count(trace.span_count, "span")),
      trace.error_count ? el("span", { className: "badge error" }, fmt.count(trace.error_count, "error")) : el("span", { className: "badge ok" }, "no errors"),
      tokens ? el("span", {}, fmt.count(tokens, "token")) : null,
    ].filter(Boolean));
    drawAxis(totalNs / 1e6);
    drawRows(depths, start, totalNs);
    rowsBox.addEventListener("click", (event) => {
      const button = event.target.closest(".toggle");
      if (button) { toggle(Number(button.dataset.index)); return; }
      const row = event.target.closest(".row");
      if (row) openSpan(Number(row.dataset.index));
    });
    rowsBox.addEventListener("keydown", (event) => {
      const row = event.target.closest(".row");
      if (row && event.key === "Enter") openSpan(Number(row.dataset.index));
    });
    revealHash();
    window.addEventListener("hashchange", revealHash);
    document.getElementById("waterfall").dataset.ready = "true";
    announce();
  }

  load();
})();
