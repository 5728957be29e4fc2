"use strict";

(async function () {
  const { json, el } = window.plughost;
  const body = document.querySelector("#plugins tbody");
  try {
    const info = await json("/server-info");
    for (const [name, status] of Object.entries(info.plugins || {})) {
      body.append(el("tr", {}, el("td", {}, name), el("td", {}, el("span", { className: "badge " + ({ enabled: "ok", error: "error" }[status] || "") }, status))));
    }
  } catch (error) {
    body.append(el("tr", {}, el("td", { colSpan: 2, className: "error" }, error.message)));
  }
})();
