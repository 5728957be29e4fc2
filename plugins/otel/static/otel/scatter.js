// A scatter plot of trace durations over start time, as Jaeger draws above its search results:
// one point a trace (red when it has an error), each a link to its trace. Plain SVG.
"use strict";

window.otelScatter = (function () {
  const SVG = "http://www.w3.org/2000/svg";
  const HEIGHT = 170;
  const PAD = { left: 64, right: 16, top: 12, bottom: 26 };
  const RADIUS = 5;

  function node(tag, attributes, ...children) {
    const made = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attributes)) made.setAttribute(key, value);
    for (const child of children) made.append(child);
    return made;
  }

  // Round tick values from 0 to at least top: steps of 1, 2 or 5 times a power of ten, four or so.
  function ticks(top) {
    const rough = top / 4;
    const power = 10 ** Math.floor(Math.log10(rough));
    const step = [1, 2, 5, 10].map((m) => m * power).find((candidate) => candidate >= rough);
    const found = [0];
    while (found[found.length - 1] < top) found.push(found.length * step);
    return found;
  }

  function clock(nanos) {
    return new Date(Number(nanos) / 1e6).toLocaleTimeString(undefined, { hour12: false });
  }

  function draw(svg, traces) {
    const fmt = window.otelFormat;
    const width = Math.max(svg.clientWidth || svg.parentNode.clientWidth || 600, 300);
    svg.setAttribute("viewBox", `0 0 ${width} ${HEIGHT}`);
    svg.setAttribute("height", HEIGHT);
    const starts = traces.map((trace) => Number(trace.start_time_unix_nano));
    const first = Math.min(...starts);
    const last = Math.max(...starts);
    const top = Math.max(...traces.map((trace) => trace.duration_ms), 0.001);
    const scale = ticks(top);
    const yTop = scale[scale.length - 1];
    const plotWidth = width - PAD.left - PAD.right;
    const plotHeight = HEIGHT - PAD.top - PAD.bottom;
    const x = (nanos) => PAD.left + (last === first ? plotWidth / 2 : ((nanos - first) / (last - first)) * plotWidth);
    const y = (ms) => PAD.top + plotHeight - (ms / yTop) * plotHeight;
    const parts = [];
    for (const value of scale) {
      parts.push(node("line", { class: "grid", x1: PAD.left, x2: width - PAD.right, y1: y(value), y2: y(value) }));
      parts.push(node("text", { class: "axis-text", x: PAD.left - 6, y: y(value) + 4, "text-anchor": "end" }, fmt.duration(value)));
    }
    parts.push(node("text", { class: "axis-text", x: PAD.left, y: HEIGHT - 6, "text-anchor": "start" }, clock(first)));
    if (last !== first) parts.push(node("text", { class: "axis-text", x: width - PAD.right, y: HEIGHT - 6, "text-anchor": "end" }, clock(last)));
    traces.forEach((trace, index) => {
      const label = (trace.root_name || "(no root span)") + " · " + fmt.duration(trace.duration_ms) + " · " +
        fmt.time(trace.start_time_unix_nano).textContent + (trace.error_count ? " · " + fmt.count(trace.error_count, "error") : "");
      parts.push(node("a", { href: fmt.traceUrl(trace.trace_id), class: "point" + (trace.error_count ? " error" : ""), "aria-label": label, "data-trace-id": trace.trace_id },
        node("circle", { cx: x(starts[index]), cy: y(trace.duration_ms), r: RADIUS }, node("title", {}, label))));
    });
    svg.replaceChildren(...parts);
  }

  return { draw };
})();
