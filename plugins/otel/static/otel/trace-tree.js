// A trace's span tree as flat typed arrays, built from the pieces of
// GET /api/otel/traces/{id}/skeleton, and the rows a waterfall shows given what is folded.
// No DOM here: trace.js draws it.
//
// Two numberings: a span's index (its place in the skeleton: start order) and its position
// (its place in the waterfall: depth first, children by start). A span's subtree is the
// positions [pos, end[pos]). `rows` holds the positions shown, in order; folding and
// unfolding splice it, never re-walking the whole tree.
"use strict";

window.otelTraceTree = (function () {
  const FLAG_ERROR = 1;
  const FLAG_NOT_COUNTED = 4;  // a model call whose tokens and cost a span nested in it carries
  const FLAG_MODEL_CALL = 8;   // an LLM or embedding call: its tokens and cost follow the model

  function grow(array, size) {
    if (array.length >= size) return array;
    const bigger = new array.constructor(Math.max(size, array.length * 2));
    bigger.set(array);
    return bigger;
  }

  class TraceTree {
    constructor(capacity) {
      const size = Math.max(capacity, 16);
      this.count = 0;
      this.ids = [];
      this.indexOf = new Map();  // span id -> index
      this.parentIds = [];       // a parent named by id, resolved once every piece is in
      this.parent = new Int32Array(size);
      this.name = new Int32Array(size);
      this.service = new Int32Array(size);
      this.kind = new Int32Array(size);
      this.model = new Int32Array(size);
      this.start = new Float64Array(size);     // µs after the trace's start
      this.duration = new Float64Array(size);  // µs
      this.flags = new Uint8Array(size);
      this.inputTokens = new Float64Array(size);   // NaN: not known
      this.outputTokens = new Float64Array(size);
      this.cost = new Float64Array(size);          // US dollars; NaN: no price known
      this.names = []; this.services = []; this.kinds = []; this.models = [];
      this.tables = { names: new Map(), services: new Map(), kinds: new Map(), models: new Map() };
      this.userFold = new Uint8Array(size);    // by index: 0 the default, 1 unfolded, 2 folded by the user
      this.rowCount = 0;
      this.rows = new Int32Array(0);
    }

    // Adds a skeleton piece (fields as GET .../skeleton answers them).
    addPiece(piece) {
      const base = this.count;
      const size = base + piece.spans.length;
      for (const key of ["parent", "name", "service", "kind", "model", "start", "duration", "flags", "userFold",
        "inputTokens", "outputTokens", "cost"]) {
        this[key] = grow(this[key], size);
      }
      const local = {};
      for (const table of ["names", "services", "kinds", "models"]) {
        local[table] = (piece[table] || []).map((text) => this.intern(table, text));
      }
      piece.spans.forEach((row, offset) => {
        const index = base + offset;
        const [spanId, parent, name, service, start, duration, flags, kind, model, inputTokens, outputTokens, cost] = row;
        this.ids.push(spanId);
        this.indexOf.set(spanId, index);
        if (typeof parent === "number") this.parent[index] = base + parent;
        else if (parent === null) this.parent[index] = -1;
        else { this.parent[index] = -2; this.parentIds.push(index, parent); }
        this.name[index] = local.names[name];
        this.service[index] = local.services[service];
        this.start[index] = start;
        this.duration[index] = duration;
        this.flags[index] = flags || 0;
        this.kind[index] = kind === undefined || kind === null ? -1 : local.kinds[kind];
        this.model[index] = model === undefined || model === null ? -1 : local.models[model];
        this.inputTokens[index] = typeof inputTokens === "number" ? inputTokens : NaN;
        this.outputTokens[index] = typeof outputTokens === "number" ? outputTokens : NaN;
        this.cost[index] = typeof cost === "number" ? cost : NaN;
      });
      this.count = size;
    }

    intern(table, text) {
      const known = this.tables[table];
      if (!known.has(text)) { known.set(text, this[table].length); this[table].push(text); }
      return known.get(text);
    }

    // The depth-first order of what is in so far; a span whose parent is not (yet) in is a root.
    build() {
      const n = this.count;
      const parentOf = new Int32Array(n);
      parentOf.set(this.parent.subarray(0, n));
      for (let i = 0; i < this.parentIds.length; i += 2) {
        const found = this.indexOf.get(this.parentIds[i + 1]);
        parentOf[this.parentIds[i]] = found === undefined || found === this.parentIds[i] ? -1 : found;
      }
      // children in index (start) order, as offsets into one array
      const firstChild = new Int32Array(n + 1);
      for (let i = 0; i < n; i++) if (parentOf[i] >= 0) firstChild[parentOf[i] + 1]++;
      for (let i = 0; i < n; i++) firstChild[i + 1] += firstChild[i];
      const children = new Int32Array(firstChild[n]);
      const filled = firstChild.slice(0, n);
      for (let i = 0; i < n; i++) if (parentOf[i] >= 0) children[filled[parentOf[i]]++] = i;
      const order = new Int32Array(n);
      const position = new Int32Array(n);
      const depth = new Int32Array(n);
      const end = new Int32Array(n);
      // an explicit stack of (index, next child offset)
      const stackIndex = new Int32Array(n);
      const stackNext = new Int32Array(n);
      let placed = 0;
      for (let root = 0; root < n; root++) {
        if (parentOf[root] >= 0) continue;
        let top = 0;
        stackIndex[0] = root; stackNext[0] = firstChild[root];
        position[root] = placed; order[placed] = root; depth[placed] = 0; placed++;
        while (top >= 0) {
          const index = stackIndex[top];
          if (stackNext[top] < firstChild[index + 1]) {
            const child = children[stackNext[top]++];
            position[child] = placed; order[placed] = child; depth[placed] = top + 1; placed++;
            top++;
            stackIndex[top] = child; stackNext[top] = firstChild[child];
          } else {
            end[position[index]] = placed;
            top--;
          }
        }
      }
      // a cycle of parents (a forged trace) leaves spans unplaced: they become roots at the end
      for (let i = 0; i < n && placed < n; i++) {
        if (placed > position[i] && order[position[i]] === i) continue;
        position[i] = placed; order[placed] = i; depth[placed] = 0; end[placed] = placed + 1; placed++;
      }
      Object.assign(this, { parentOf, order, position, depth, end });
      this.foldDepth = this.defaultFoldDepth();
      this.showRows();
    }

    // Unfolded down to the deepest level that keeps the first screen to about `limit` rows (the root's children at least).
    defaultFoldDepth(limit = 300) {
      const perDepth = [];
      for (let pos = 0; pos < this.count; pos++) perDepth[this.depth[pos]] = (perDepth[this.depth[pos]] || 0) + 1;
      let shown = 0;
      for (let level = 0; level < perDepth.length; level++) {
        shown += perDepth[level];
        if (shown > limit) return Math.max(level - 1, 1);
      }
      return perDepth.length;
    }

    hasChildren(pos) { return this.end[pos] > pos + 1; }

    isFolded(pos) {
      if (!this.hasChildren(pos)) return false;
      const choice = this.userFold[this.order[pos]];
      return choice ? choice === 2 : this.depth[pos] >= this.foldDepth;
    }

    // Every row, walking the tree once (after a build).
    showRows() {
      const rows = new Int32Array(this.count);
      let count = 0;
      for (let pos = 0; pos < this.count;) {
        rows[count++] = pos;
        pos = this.isFolded(pos) ? this.end[pos] : pos + 1;
      }
      this.rows = rows;
      this.rowCount = count;
    }

    // The row showing position `pos`, or -1 (binary search: rows are in position order).
    rowOf(pos) {
      let low = 0, high = this.rowCount - 1;
      while (low <= high) {
        const middle = (low + high) >> 1;
        const at = this.rows[middle];
        if (at === pos) return middle;
        if (at < pos) low = middle + 1; else high = middle - 1;
      }
      return -1;
    }

    firstRowFrom(pos, low) {
      let high = this.rowCount;
      while (low < high) {
        const middle = (low + high) >> 1;
        if (this.rows[middle] < pos) low = middle + 1; else high = middle;
      }
      return low;
    }

    // Folds or unfolds the span at `pos` (shown at `row`): only the rows of its subtree move.
    setFolded(pos, folded) {
      this.userFold[this.order[pos]] = folded ? 2 : 1;
      const row = this.rowOf(pos);
      if (row < 0) return;
      const after = this.firstRowFrom(this.end[pos], row + 1);
      if (folded) {
        this.rows.copyWithin(row + 1, after, this.rowCount);
        this.rowCount -= after - row - 1;
        return;
      }
      const added = [];
      for (let at = pos + 1; at < this.end[pos];) {
        added.push(at);
        at = this.isFolded(at) ? this.end[at] : at + 1;
      }
      const rows = new Int32Array(this.rowCount - (after - row - 1) + added.length);
      rows.set(this.rows.subarray(0, row + 1));
      rows.set(added, row + 1);
      rows.set(this.rows.subarray(after, this.rowCount), row + 1 + added.length);
      this.rows = rows;
      this.rowCount = rows.length;
    }

    // Unfolds every ancestor of `pos`, so that it is shown; returns its row.
    reveal(pos) {
      const ancestors = [];
      for (let index = this.parentOf[this.order[pos]]; index >= 0; index = this.parentOf[index]) ancestors.push(this.position[index]);
      for (let i = ancestors.length - 1; i >= 0; i--) if (this.isFolded(ancestors[i])) this.setFolded(ancestors[i], false);
      return this.rowOf(pos);
    }

    isError(index) { return (this.flags[index] & FLAG_ERROR) !== 0; }

    isModelCall(index) { return (this.flags[index] & FLAG_MODEL_CALL) !== 0; }

    isCounted(index) { return (this.flags[index] & FLAG_NOT_COUNTED) === 0; }

    // Input + output tokens of a model call, or null when it reports none.
    tokens(index) {
      const input = this.inputTokens[index], output = this.outputTokens[index];
      if (Number.isNaN(input) && Number.isNaN(output)) return null;
      return (Number.isNaN(input) ? 0 : input) + (Number.isNaN(output) ? 0 : output);
    }

    // A model call's cost in US dollars, or null when no price is known.
    costOf(index) { return Number.isNaN(this.cost[index]) ? null : this.cost[index]; }

    // Indexes (start order) of the spans whose name or service holds `text` (case-insensitive).
    find(text) {
      const needle = text.toLowerCase();
      const nameHit = this.names.map((name) => name.toLowerCase().includes(needle));
      const serviceHit = this.services.map((service) => service.toLowerCase().includes(needle));
      const found = [];
      for (let i = 0; i < this.count; i++) if (nameHit[this.name[i]] || serviceHit[this.service[i]]) found.push(i);
      return found;
    }

    // A light object for the span at `index`, as other plugins get it.
    span(index) {
      const parent = this.parentOf ? this.parentOf[index] : -1;
      return {
        span_id: this.ids[index],
        parent_span_id: parent >= 0 ? this.ids[parent] : null,
        name: this.names[this.name[index]],
        service_name: this.services[this.service[index]],
        start_ms: this.start[index] / 1000,
        duration_ms: this.duration[index] / 1000,
        error: this.isError(index),
        kind: this.kind[index] >= 0 ? this.kinds[this.kind[index]] : null,
        model: this.model[index] >= 0 ? this.models[this.model[index]] : null,
      };
    }
  }

  return { TraceTree, FLAG_ERROR, FLAG_NOT_COUNTED, FLAG_MODEL_CALL };
})();
