// Hand-written SVG charts, built with DOM calls; labels and tooltips are set as text.
// - usageChart: one endpoint's attempts over time, latency above and tokens below on a shared time
//   axis. Each attempt is a point: calls minutes apart are never joined by a line.
// - spendChart: the spend of every endpoint over the window, one bar per time bin.
// Axis titles sit left of the tick labels, turned upright, so they never meet a tick or the legend.
"use strict";

(function () {
  const NS = "http://www.w3.org/2000/svg";
  const { dollars } = window.plughostGateway;
  const WIDTH = 560, LEFT = 76, RIGHT = 14, PLOT = 90, GAP = 26, TOP = 10, X_TICKS = 4;

  function svg(tag, attributes, ...children) {
    const node = document.createElementNS(NS, tag);
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, String(value));
    for (const child of children) node.append(child instanceof Node ? child : String(child));
    return node;
  }

  function clock(seconds) {
    return new Date(seconds * 1000).toLocaleTimeString(undefined, { hour12: false });
  }

  // A round step that cuts 0..max in about three.
  function niceMax(max) {
    if (max <= 0) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(max)));
    const step = [1, 2, 2.5, 5, 10].find((m) => m * power >= max);
    return step * power;
  }

  // The frame of one plot from y = top down PLOT pixels: axes, y ticks (0, half, max) with grid
  // lines, and the axis title turned upright at the far left.
  function frame(top, max, title, format) {
    const group = svg("g", { class: "frame" });
    group.append(
      svg("line", { class: "axis", x1: LEFT, y1: top + PLOT, x2: WIDTH - RIGHT, y2: top + PLOT }),
      svg("line", { class: "axis", x1: LEFT, y1: top, x2: LEFT, y2: top + PLOT }),
    );
    for (const fraction of [0, 0.5, 1]) {
      const y = top + PLOT - fraction * PLOT;
      if (fraction) group.append(svg("line", { class: "grid", x1: LEFT, y1: y, x2: WIDTH - RIGHT, y2: y }));
      group.append(svg("text", { class: "tick", x: LEFT - 6, y: y + 3, "text-anchor": "end" }, format(max * fraction)));
    }
    const middle = top + PLOT / 2;
    group.append(svg("text", { class: "axis-title", x: 12, y: middle, "text-anchor": "middle", transform: "rotate(-90 12 " + middle + ")" }, title));
    return group;
  }

  // Time ticks under the plot whose bottom is at `bottom` (only its ends when ticks between would repeat a second).
  function timeAxis(bottom, since, until) {
    const group = svg("g", { class: "time-axis" });
    const count = until - since >= 2 * X_TICKS ? X_TICKS : 1;
    for (let i = 0; i <= count; i++) {
      const x = LEFT + (i / count) * (WIDTH - LEFT - RIGHT);
      const anchor = i === 0 ? "start" : i === count ? "end" : "middle";
      group.append(
        svg("line", { class: "axis", x1: x, y1: bottom, x2: x, y2: bottom + 4 }),
        svg("text", { class: "tick", x, y: bottom + 15, "text-anchor": anchor }, clock(since + (i / count) * (until - since))),
      );
    }
    return group;
  }

  // One series of points {t, v, failed, label} between since and until.
  function points(series, top, since, until, max, className) {
    const group = svg("g", { class: "series", "data-series": className });
    const x = (t) => LEFT + ((t - since) / Math.max(until - since, 1e-9)) * (WIDTH - LEFT - RIGHT);
    const y = (v) => top + PLOT - (v / max) * PLOT;
    for (const point of series) {
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
    const latencyMax = niceMax(Math.max(0, ...latency.map((p) => p.v)));
    const tokensMax = niceMax(Math.max(0, ...tokens.map((p) => p.v)));
    const second = TOP + PLOT + GAP;
    const bottom = second + PLOT;
    const whole = (value) => Number(value.toPrecision(3)).toLocaleString();
    return svg("svg", { viewBox: "0 0 " + WIDTH + " " + (bottom + 22), role: "img", "aria-label": "latency and tokens of each attempt over time" },
      frame(TOP, latencyMax, "latency ms", whole),
      points(latency, TOP, since, until, latencyMax, "latency"),
      frame(second, tokensMax, "tokens", whole),
      points(tokens, second, since, until, tokensMax, "tokens"),
      timeAxis(bottom, since, until),
    );
  }

  // buckets: GET /api/gateway/usage/timeline's, oldest first; bucketSeconds: their width.
  function spendChart(buckets, bucketSeconds) {
    const since = buckets[0].start, until = since + buckets.length * bucketSeconds;
    const max = niceMax(Math.max(0, ...buckets.map((b) => b.cost_usd || 0)));
    const slot = (WIDTH - LEFT - RIGHT) / buckets.length;
    const bars = svg("g", { class: "series", "data-series": "spend" });
    buckets.forEach((bucket, index) => {
      if (!bucket.calls) return;
      const cost = bucket.cost_usd || 0;
      const height = bucket.cost_usd === null ? 2 : Math.max((cost / max) * PLOT, cost ? 1 : 0);  // a stub: calls, no price
      const endpoints = Object.entries(bucket.endpoints).map(([name, usd]) => name + " " + dollars(usd)).join(", ");
      const text = clock(bucket.start) + "–" + clock(bucket.start + bucketSeconds) + " · " + bucket.calls + " attempts · "
        + (bucket.cost_usd === null ? "no price known" : dollars(cost) + (endpoints ? " (" + endpoints + ")" : ""));
      bars.append(svg("rect", {
        class: "bar" + (bucket.cost_usd === null ? " unpriced" : ""), x: (LEFT + index * slot + slot * 0.1).toFixed(1),
        y: (TOP + PLOT - height).toFixed(1), width: Math.max(slot * 0.8, 1).toFixed(1), height: height.toFixed(1),
      }, svg("title", {}, text)));
    });
    return svg("svg", { viewBox: "0 0 " + WIDTH + " " + (TOP + PLOT + 22), role: "img", "aria-label": "spend over time" },
      frame(TOP, max, "US dollars", (usd) => (usd ? "$" + Number(usd.toPrecision(3)) : "$0")), bars, timeAxis(TOP + PLOT, since, until));
  }

  Object.assign(window.plughostGateway, { usageChart, spendChart });
})();
