// A shell script from a scripts-only contribution: it runs on every console page, after console.js.
"use strict";
document.querySelector("main").append(window.plughost.el("p", { id: "slot" }, "slot ran on " + location.pathname));
