// The trace view: a waterfall that draws only the rows on screen (any number of spans), a span
// panel, search inside the trace, the list of errors and a minimap of the trace's timeline.
//
// The tree comes from GET /api/otel/traces/{id}/skeleton, piece by piece (drawn as the pieces
// arrive); a span's attributes only when it is opened (GET .../spans/{span_id}). The selected
// span is in the URL ("#<span id>"; a link to it opens it). Once every piece is in, the page
// dispatches "plughost:trace-view" so that other plugins can add to it (see the README).
"use strict";

(function () {
  const { api, json, el } = window.plughost;
  const fmt = window.otelFormat;
  const { TraceTree } = window.otelTraceTree;
  const traceId = document.getElementById("trace").dataset.traceId;
  const scroller = document.getElementById("rows");
  const sizer = document.getElementById("rows-sizer");
  const windowBox = document.getElementById("rows-window");
  const panel = document.getElementById("span-panel");
  const ROW_HEIGHT = 26;
  const MARGIN_ROWS = 20;
  const FIRST_PIECE = 5000;
  const PIECE = 50000;
  const ERRORS_LISTED = 20;
  const base = "/api/otel/traces/" + encodeURIComponent(traceId);

  let tree = null;
  let totalUs = 1;
  let selected = -1;          // position of the open span
  let spanRequest = 0;        // the latest span asked for (older answers are dropped)
  const marks = new Map();    // class name -> Set of positions marked by highlight()
  let matches = [];           // search matches, as positions in waterfall order
  let matchAt = -1;

  function showError(message) {
    const line = document.getElementById("trace-error");
    line.textContent = message;
    line.hidden = false;
  }

  // An attribute key with a line-break opportunity after each dot: "gen_ai.usage.<wbr>input_tokens".
  function breakable(key) {
    return key.split(".").flatMap((part, index, parts) => (index < parts.length - 1 ? [part + ".", el("wbr")] : [part]));
  }

  function niceStep(total, count) {
    const raw = total / count;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const factor of [1, 2, 2.5, 5, 10]) if (raw <= factor * power) return factor * power;
    return 10 * power;
  }

  function drawAxis(totalMs) {
    const step = niceStep(Math.max(totalMs, 0.001), 6);
    const marksOnAxis = [];
    for (let at = 0; at <= totalMs + step / 1000; at += step) {
      marksOnAxis.push(el("span", { className: "tick", style: "left:" + (at / totalMs * 100) + "%" }, fmt.duration(at)));
    }
    document.getElementById("ticks").replaceChildren(...marksOnAxis);
  }

  // ---- the waterfall: only the rows on screen, plus a margin ----

  // An LLM call's tokens and cost, beside its duration; muted when a span nested in it carries the call.
  function usage(index) {
    if (!tree.isModelCall(index)) return null;
    const tokens = tree.tokens(index);
    return el("span", { className: "usage" + (tree.isCounted(index) ? "" : " not-counted"),
      title: tree.isCounted(index) ? "input + output tokens · cost in US dollars" : "counted in the span nested in this one" },
      el("span", { className: "tokens" }, (tokens === null ? "—" : tokens.toLocaleString()) + " tok"),
      el("span", { className: "cost" }, fmt.cost(tree.costOf(index))));
  }

  function rowElement(row) {
    const pos = tree.rows[row];
    const index = tree.order[pos];
    const hasChildren = tree.hasChildren(pos);
    const folded = tree.isFolded(pos);
    const left = tree.start[index] / totalUs * 100;
    const width = Math.max(tree.duration[index] / totalUs * 100, 0.15);
    const model = tree.model[index] >= 0 ? tree.models[tree.model[index]] : null;
    const kind = tree.kind[index] >= 0 ? tree.kinds[tree.kind[index]] : null;
    const hidden = hasChildren && folded ? tree.end[pos] - pos - 1 : 0;
    const label = el("div", { className: "label", style: "padding-left:" + (8 + Math.min(tree.depth[pos], 40) * 14) + "px" },
      hasChildren
        ? el("button", { type: "button", className: "toggle", title: folded ? "Expand" : "Collapse", "aria-expanded": String(!folded), tabIndex: -1 }, folded ? "▸" : "▾")
        : el("span", { className: "toggle-space" }),
      el("span", { className: "service" }, tree.services[tree.service[index]]),
      el("span", { className: "name" }, tree.names[tree.name[index]]),
      kind && !(kind === "llm" && model) ? el("span", { className: "chip kind kind-" + kind }, kind) : null,
      model ? el("span", { className: "chip genai" }, model) : null,
      hidden ? el("span", { className: "folded-count", title: hidden + " spans folded" }, "+" + hidden.toLocaleString()) : null,
    );
    const bar = el("div", { className: "bar", style: "left:" + left + "%;width:" + width + "%" });
    const duration = el("span", { className: "bar-label", style: left > 70 ? "right:" + (100 - left) + "%" : "left:" + (left + width) + "%" },
      fmt.duration(tree.duration[index] / 1000), usage(index));
    const classes = ["row"];
    if (tree.isError(index)) classes.push("error");
    if (pos === selected) classes.push("selected");
    for (const [className, positions] of marks) if (positions.has(pos)) classes.push(className);
    return el("div", {
      className: classes.join(" "), role: "treeitem", tabIndex: pos === selected ? 0 : -1,
      "aria-level": tree.depth[pos] + 1, "aria-selected": String(pos === selected),
      style: "top:" + row * ROW_HEIGHT + "px",
      dataset: { pos, spanId: tree.ids[index] },
    }, label, el("div", { className: "track" }, bar, duration));
  }

  // Draws the rows in view; keeps the focus on the selected row when it had it.
  function render() {
    if (!tree) return;
    const hadFocus = document.activeElement && windowBox.contains(document.activeElement);
    sizer.style.height = tree.rowCount * ROW_HEIGHT + "px";
    const first = Math.max(0, Math.floor(scroller.scrollTop / ROW_HEIGHT) - MARGIN_ROWS);
    const last = Math.min(tree.rowCount, Math.ceil((scroller.scrollTop + scroller.clientHeight) / ROW_HEIGHT) + MARGIN_ROWS);
    const elements = [];
    for (let row = first; row < last; row++) elements.push(rowElement(row));
    windowBox.replaceChildren(...elements);
    if (hadFocus) {
      const focused = windowBox.querySelector(".row.selected");
      if (focused) focused.focus({ preventScroll: true });
    }
  }

  let renderQueued = false;
  function renderSoon() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => { renderQueued = false; render(); });
  }

  function scrollToRow(row) {
    sizer.style.height = tree.rowCount * ROW_HEIGHT + "px";  // the row may have just been unfolded into view
    const top = row * ROW_HEIGHT;
    if (top < scroller.scrollTop || top + ROW_HEIGHT > scroller.scrollTop + scroller.clientHeight) {
      scroller.scrollTop = Math.max(0, top - scroller.clientHeight / 3);
    }
  }

  function toggle(pos) {
    tree.setFolded(pos, !tree.isFolded(pos));
    render();
  }

  // Shows the span at `pos` (unfolding its ancestors), scrolls to it, and opens it unless told not to.
  function reveal(pos, open = true) {
    const row = tree.reveal(pos);
    scrollToRow(row);
    if (open) select(pos); else render();
    windowBox.querySelector('[data-pos="' + pos + '"]').scrollIntoView({ block: "nearest" });
  }

  // ---- the span panel ----

  function isError(span) {
    return span.status.code === "STATUS_CODE_ERROR" || span.events.some((event) => event.name === "exception");
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
      : api("/api/otel/traces/" + link.trace_id + "/spans/" + link.span_id).then((response) => response.ok, () => false);
    check.then((stored) => {
      if (!stored) { item.append(el("span", { className: "muted" }, " (not stored)")); return; }
      const anchor = el("a", { href: "/traces/" + encodeURIComponent(link.trace_id) + "#" + encodeURIComponent(link.span_id) }, link.trace_id + " / " + link.span_id);
      item.replaceChildren(anchor);
    });
    return item;
  }

  function closePanel() {
    panel.hidden = true;
    selected = -1;
    history.replaceState(null, "", location.pathname + location.search);
    render();
  }

  function showSpan(span) {
    const attrs = span.attributes;
    const genai = span.genai || {};  // the otel plugin's one reading of every LLM convention
    const model = genai.model;
    const exceptions = span.events.filter((event) => event.name === "exception");
    const others = span.events.filter((event) => event.name !== "exception");
    panel.replaceChildren(...[
      el("div", { className: "panel-head" },
        el("h2", {}, span.name),
        el("button", { type: "button", className: "secondary close", title: "Close", onclick: closePanel }, "×")),
      el("div", { className: "facts" },
        el("span", {}, span.service_name || ""),
        el("span", {}, span.kind.replace("SPAN_KIND_", "").toLowerCase()),
        el("span", {}, fmt.duration(span.duration_ms)),
        el("span", { className: "badge " + (isError(span) ? "error" : "ok") }, span.status.code.replace("STATUS_CODE_", "").toLowerCase()),
      ),
      span.status.message ? el("p", { className: "error" }, span.status.message) : null,
      model ? el("div", { className: "genai-facts" },
        el("div", {}, el("label", {}, "Model"), el("strong", {}, model)),
        el("div", {}, el("label", {}, "Input tokens"), el("strong", {}, fmt.orDash(genai.input_tokens))),
        el("div", {}, el("label", {}, "Output tokens"), el("strong", {}, fmt.orDash(genai.output_tokens))),
        el("div", { title: genai.counted === false ? "counted in the span nested in this one" : "US dollars" },
          el("label", {}, "Cost"), el("strong", { className: "cost" }, fmt.cost(genai.cost_usd)))) : null,
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
      section("Scope", table([["name", span.scope.name || "—"], ["version", span.scope.version || "—"], ...Object.entries(span.scope.attributes)])),
    ].filter(Boolean));
    panel.hidden = false;
  }

  // Selects the span at `pos`: its row is marked at once, its details follow from the server.
  async function select(pos) {
    selected = pos;
    render();
    const spanId = tree.ids[tree.order[pos]];
    if (decodeURIComponent(location.hash.slice(1)) !== spanId) history.replaceState(null, "", "#" + spanId);
    const asked = ++spanRequest;
    panel.replaceChildren(el("p", { className: "muted" }, "Loading " + tree.names[tree.name[tree.order[pos]]] + "…"));
    panel.hidden = false;
    try {
      const span = await json(base + "/spans/" + encodeURIComponent(spanId));
      if (asked === spanRequest) showSpan(span);
    } catch (error) {
      if (asked === spanRequest) panel.replaceChildren(el("p", { className: "error" }, error.message));
    }
  }

  function positionOf(spanId) {
    const index = tree.indexOf.get(spanId);
    return index === undefined ? -1 : tree.position[index];
  }

  function revealHash() {
    const wanted = positionOf(decodeURIComponent(location.hash.slice(1)));
    if (wanted >= 0 && wanted !== selected) reveal(wanted);
  }

  // ---- finding things: search, the errors, the minimap ----

  function showMatch(step) {
    const counter = document.getElementById("search-count");
    if (!matches.length) { counter.textContent = document.getElementById("trace-search").value ? "no match" : ""; return; }
    matchAt = (matchAt + step + matches.length) % matches.length;
    counter.textContent = (matchAt + 1).toLocaleString() + " of " + matches.length.toLocaleString();
    reveal(matches[matchAt]);
  }

  function setMatches(positions) {
    matches = [...new Set(positions)].sort((a, b) => a - b);
    marks.set("match", new Set(matches));
    matchAt = -1;
  }

  let searchAsked = 0;
  async function search(text) {
    const asked = ++searchAsked;
    if (!text) { setMatches([]); showMatch(0); render(); return; }
    // names and services from the skeleton at once; attribute values from the server
    setMatches(tree.find(text).map((index) => tree.position[index]));
    showMatch(1);
    try {
      const found = await json(base + "/search?limit=1000&q=" + encodeURIComponent(text));
      if (asked !== searchAsked) return;
      const current = matches[matchAt];
      setMatches([...matches, ...found.matches.map((match) => positionOf(match.span_id)).filter((pos) => pos >= 0)]);
      matchAt = Math.max(matches.indexOf(current), 0) - 1;
      showMatch(1);
      if (found.truncated) document.getElementById("search-count").textContent += " (first 1,000 attribute matches)";
    } catch (error) {
      if (asked === searchAsked) document.getElementById("search-count").textContent = error.message;
    }
  }

  function setUpSearch() {
    const input = document.getElementById("trace-search");
    let timer = null;
    let searched = "";
    const run = () => { searched = input.value.trim(); search(searched); };
    input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(run, 250); });
    input.addEventListener("keydown", (event) => {
      if (event.key !== "Enter") return;
      event.preventDefault();
      clearTimeout(timer);
      if (input.value.trim() !== searched) run(); else showMatch(event.shiftKey ? -1 : 1);
    });
    document.getElementById("search-next").addEventListener("click", () => showMatch(1));
    document.getElementById("search-previous").addEventListener("click", () => showMatch(-1));
  }

  function errorPositions() {
    const found = [];
    for (let index = 0; index < tree.count; index++) if (tree.isError(index)) found.push(tree.position[index]);
    return found.sort((a, b) => a - b);
  }

  function drawErrors(errors) {
    const box = document.getElementById("trace-errors");
    if (!errors.length) { box.hidden = true; return; }
    const link = (pos) => {
      const index = tree.order[pos];
      return el("a", { href: "#" + tree.ids[index], className: "error-link", onclick: (event) => { event.preventDefault(); reveal(pos); } },
        tree.names[tree.name[index]] + " (" + tree.services[tree.service[index]] + ")");
    };
    box.replaceChildren(
      el("strong", {}, fmt.count(errors.length, "error") + ": "),
      ...errors.slice(0, ERRORS_LISTED).flatMap((pos, i) => (i ? [" · ", link(pos)] : [link(pos)])),
      ...(errors.length > ERRORS_LISTED ? [el("span", { className: "muted" }, " … and " + (errors.length - ERRORS_LISTED).toLocaleString() + " more")] : []),
    );
    box.hidden = false;
  }

  // The minimap: how many spans run at each moment (the bars), where the errors are (red), and
  // the stretch of time of the rows on screen; a click scrolls to the row at that moment.
  function drawMinimap(errors) {
    const canvas = document.getElementById("minimap");
    const width = canvas.clientWidth || 600;
    const height = canvas.clientHeight || 36;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    const context = canvas.getContext("2d");
    context.scale(ratio, ratio);
    const running = new Float64Array(width + 1);
    for (let index = 0; index < tree.count; index++) {
      const from = Math.min(width - 1, Math.floor(tree.start[index] / totalUs * width));
      const to = Math.min(width, Math.max(from + 1, Math.ceil((tree.start[index] + tree.duration[index]) / totalUs * width)));
      running[from] += 1;
      running[to] -= 1;
    }
    let most = 1;
    for (let x = 1; x <= width; x++) { running[x] += running[x - 1]; most = Math.max(most, running[x - 1]); }
    context.clearRect(0, 0, width, height);
    context.fillStyle = "#9ecbff";
    for (let x = 0; x < width; x++) {
      const bar = running[x] ? Math.max(2, Math.log1p(running[x]) / Math.log1p(most) * (height - 4)) : 0;
      context.fillRect(x, height - bar, 1, bar);
    }
    context.fillStyle = "#cf222e";
    for (const pos of errors) {
      const x = Math.floor(tree.start[tree.order[pos]] / totalUs * width);
      context.fillRect(Math.min(x, width - 2), 0, 2, height);
    }
    canvas.title = "Spans running over time; errors in red. Click to go there.";
    canvas.dataset.errors = String(errors.length);
  }

  function minimapClick(event, errors) {
    const canvas = event.currentTarget;
    const at = (event.offsetX / canvas.clientWidth) * totalUs;
    const near = (4 / canvas.clientWidth) * totalUs;
    const error = errors.find((pos) => Math.abs(tree.start[tree.order[pos]] - at) <= near);
    if (error !== undefined) { reveal(error); return; }
    // the shown row whose span starts closest to that moment
    let best = 0, distance = Infinity;
    for (let row = 0; row < tree.rowCount; row++) {
      const gap = Math.abs(tree.start[tree.order[tree.rows[row]]] - at);
      if (gap < distance) { distance = gap; best = row; }
    }
    scroller.scrollTop = best * ROW_HEIGHT;
    render();
    windowBox.querySelector('[data-pos="' + tree.rows[best] + '"]').scrollIntoView({ block: "nearest" });
  }

  // ---- other plugins ----

  // Marks the rows of spanIds with className (and clears it from every other row); the count of spans marked.
  function highlight(spanIds, className) {
    const positions = new Set();
    for (const spanId of new Set(spanIds)) {
      const pos = positionOf(spanId);
      if (pos >= 0) positions.add(pos);
    }
    if (positions.size) marks.set(className, positions); else marks.delete(className);
    render();
    return positions.size;
  }

  function announce() {
    const detail = {
      traceId,
      panel: document.getElementById("trace-extensions"),
      highlight,
      spanCount: tree.count,
      reveal(spanId) { const pos = positionOf(spanId); if (pos >= 0) reveal(pos); return pos >= 0; },
    };
    // every span as a light object, in waterfall order: made when first read (a million spans cost)
    let spans = null;
    Object.defineProperty(detail, "spans", {
      enumerable: true,
      get() { return spans || (spans = Array.from(tree.order, (index) => tree.span(index))); },
    });
    document.dispatchEvent(new CustomEvent("plughost:trace-view", { detail }));
  }

  // ---- loading ----

  function drawFacts(trace) {
    document.getElementById("trace-title").textContent = trace.root_name || "Trace";
    const tokens = (trace.input_tokens || 0) + (trace.output_tokens || 0);
    document.getElementById("trace-facts").replaceChildren(...[
      el("span", { className: "mono" }, traceId),
      el("span", {}, trace.service_name || ""),
      el("span", {}, fmt.time(trace.start_time_unix_nano)),
      el("span", {}, fmt.duration(trace.duration_ms)),
      el("span", {}, fmt.count(trace.span_count, "span")),
      trace.error_count
        ? el("button", { type: "button", id: "first-error", className: "badge error", title: "Go to the first error" }, fmt.count(trace.error_count, "error"))
        : el("span", { className: "badge ok" }, "no errors"),
      tokens ? el("span", {}, fmt.count(tokens, "token")) : null,
      trace.cost_usd !== null && trace.cost_usd !== undefined ? el("span", { className: "cost", title: "US dollars" }, fmt.cost(trace.cost_usd)) : null,
      trace.session_id ? el("a", { href: fmt.sessionUrl(trace.session_id), className: "chip session-chip", title: "Session " + trace.session_id }, "session " + trace.session_id) : null,
    ].filter(Boolean));
  }

  // "← Traces" goes back to the list this trace was opened from (its URL holds its filters, sort and page).
  function linkBackToList() {
    const list = sessionStorage.getItem("otel.traces.list");
    const back = document.getElementById("back-to-list");
    if (list && new URLSearchParams(list.split("?")[1] || "").get("workspace") === window.plughost.workspace()) back.href = list;
    else back.href = fmt.url("/traces");
  }
  linkBackToList();

  async function load() {
    let cursor = null;
    let limit = FIRST_PIECE;
    const loading = document.getElementById("trace-loading");
    try {
      do {
        const piece = await json(base + "/skeleton?limit=" + limit + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
        if (!tree) {
          tree = new TraceTree(piece.span_count);
          totalUs = Math.max(piece.duration_ms * 1000, 1);
          drawFacts(piece);
          drawAxis(totalUs / 1000);
        }
        tree.addPiece(piece);
        tree.build();
        render();
        cursor = piece.next_cursor;
        limit = PIECE;
        loading.textContent = cursor ? "Loaded " + tree.count.toLocaleString() + " of " + piece.span_count.toLocaleString() + " spans…" : "";
      } while (cursor);
    } catch (error) {
      if (error.status === 404 && !tree) {
        window.plughost.notFound("No such trace", "There is no trace " + traceId + " in workspace '" + window.plughost.workspace() +
          "'. It may have been deleted, or be in another workspace (switch it above).", ["All traces", "/traces"]);
      } else showError(error.message);
      return;
    }
    loading.hidden = true;
    const errors = errorPositions();
    drawErrors(errors);
    drawMinimap(errors);
    const minimap = document.getElementById("minimap");
    minimap.addEventListener("click", (event) => minimapClick(event, errors));
    const firstError = document.getElementById("first-error");
    if (firstError && errors.length) firstError.addEventListener("click", () => reveal(errors[0]));
    setUpSearch();
    revealHash();
    window.addEventListener("hashchange", revealHash);
    document.getElementById("waterfall").dataset.ready = "true";
    announce();
  }

  scroller.addEventListener("scroll", renderSoon, { passive: true });
  window.addEventListener("resize", renderSoon);
  windowBox.addEventListener("click", (event) => {
    const row = event.target.closest(".row");
    if (!row) return;
    const pos = Number(row.dataset.pos);
    if (event.target.closest(".toggle")) toggle(pos); else select(pos);
  });
  windowBox.addEventListener("keydown", (event) => {
    const row = event.target.closest(".row");
    if (!row) return;
    const pos = Number(row.dataset.pos);
    const at = tree.rowOf(pos);
    const move = (to) => { if (to >= 0 && to < tree.rowCount) { scrollToRow(to); select(tree.rows[to]); windowBox.querySelector(".row.selected")?.focus(); } };
    if (event.key === "Enter") select(pos);
    else if (event.key === "ArrowDown") move(at + 1);
    else if (event.key === "ArrowUp") move(at - 1);
    else if (event.key === "ArrowRight" && tree.isFolded(pos)) toggle(pos);
    else if (event.key === "ArrowLeft" && tree.hasChildren(pos) && !tree.isFolded(pos)) toggle(pos);
    else return;
    event.preventDefault();
  });

  load();
})();
