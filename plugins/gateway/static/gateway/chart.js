// A hand-written SVG chart, built with DOM calls: one endpoint's calls over time, latency above and
// tokens below on a shared time axis. Labels and tooltips are set as text.
"use strict";

(function () {
  const NS = "http://www.w3.org/2000/svg";
  const WIDTH = 560, LEFT = 56, RIGHT = 12, PLOT = 90, GAP = 34, TOP = 14;

  function svg(tag, attributes, ...children) {
    const node = document.createElementNS(NS, tag);
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, String(value));
    for (const child of children) node.append(child instanceof Node ? child : String(child));
    return node;
  }

  function clock(seconds) {
    return new Date(seconds * 1000).toLocaleTimeString(undefined, { hour12: false });
  }

  // One plot: points {t, v, failed, label} between since and until, from y = top down PLOT pixels.
  function plot(points, top, since, until, unit, className) {
    const group = svg("g", { class: "series", "data-series": className });
    const max = Math.max(1, ...points.map((point) => point.v));
    const x = (t) => LEFT + ((t - since) / Math.max(until - since, 1e-9)) * (WIDTH - LEFT - RIGHT);
    const y = (v) => top + PLOT - (v / max) * PLOT;
    group.append(
      svg("line", { class: "axis", x1: LEFT, y1: top + PLOT, x2: WIDTH - RIGHT, y2: top + PLOT }),
      svg("line", { class: "axis", x1: LEFT, y1: top, x2: LEFT, y2: top + PLOT }),
      svg("text", { class: "tick", x: LEFT - 6, y: top + 8, "text-anchor": "end" }, Math.round(max)),
      svg("text", { class: "tick", x: LEFT - 6, y: top + PLOT, "text-anchor": "end" }, "0"),
      svg("text", { class: "tick", x: LEFT + 4, y: top - 4 }, unit),
    );
    const ok = points.filter((point) => !point.failed);
    if (ok.length > 1) group.append(svg("polyline", { class: className, points: ok.map((p) => x(p.t).toFixed(1) + "," + y(p.v).toFixed(1)).join(" ") }));
    for (const point of points) {
      group.append(svg("circle", { class: "point " + (point.failed ? "failed" : className), cx: x(point.t).toFixed(1), cy: y(point.v).toFixed(1), r: 3 },
        svg("title", {}, clock(point.t) + " · " + point.label)));
    }
    return group;
  }

  // calls: usage records of one endpoint in the window, any order; until: the window's end, in epoch
  // seconds. The time axis runs from just before the first call to the end, so a burst stays readable.
  function usageChart(calls, until) {
    const ordered = calls.slice().sort((a, b) => a.created_at - b.created_at);
    const first = ordered.length ? ordered[0].created_at : until;
    const since = first - Math.max((until - first) * 0.05, 1);
    const latency = ordered.map((call) => ({
      t: call.created_at, v: call.latency_ms, failed: call.status !== 200,
      label: call.model + ": " + Math.round(call.latency_ms) + " ms" + (call.status !== 200 ? " (status " + call.status + ")" : ""),
    }));
    const tokens = ordered.filter((call) => call.prompt_tokens !== null || call.completion_tokens !== null).map((call) => ({
      t: call.created_at, v: (call.prompt_tokens || 0) + (call.completion_tokens || 0), failed: false,
      label: call.model + ": " + (call.prompt_tokens || 0) + " in + " + (call.completion_tokens || 0) + " out tokens",
    }));
    const second = TOP + PLOT + GAP;
    const bottom = second + PLOT;
    return svg("svg", { viewBox: "0 0 " + WIDTH + " " + (bottom + 20), role: "img" },
      plot(latency, TOP, since, until, "latency ms", "latency"),
      plot(tokens, second, since, until, "tokens", "tokens"),
      svg("text", { class: "tick", x: LEFT, y: bottom + 14 }, clock(since)),
      svg("text", { class: "tick", x: WIDTH - RIGHT, y: bottom + 14, "text-anchor": "end" }, clock(until)),
    );
  }

  window.plughostGateway.usageChart = usageChart;
})();
