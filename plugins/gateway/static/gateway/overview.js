// The gateway overview: how many secrets, models and endpoints the workspace has.
"use strict";

(function () {
  const { json } = window.plughost;
  for (const slot of document.querySelectorAll("[data-count]")) {
    const kind = slot.dataset.count;
    json("/api/gateway/" + kind).then(
      (items) => { slot.textContent = items.length ? items.length + " configured" : "none yet"; },
      (error) => { slot.textContent = error.message; },
    );
  }
})();
