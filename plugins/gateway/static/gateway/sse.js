// Server-sent events read incrementally from a fetch() body: yields {event, data} as they arrive.
"use strict";

(function () {
  function parse(block) {
    let event = "message";
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    return data.length ? { event, data: data.join("\n") } : null;
  }

  async function* events(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
        const blocks = buffer.split(/\r?\n\r?\n/);
        buffer = done ? "" : blocks.pop();
        for (const block of blocks) {
          const found = parse(block);
          if (found) yield found;
        }
        if (done) return;
      }
    } finally {
      reader.releaseLock();
    }
  }

  window.plughostSSE = { events };
})();
