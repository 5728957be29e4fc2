"use strict";
window.plughost.json("/api/probe").then(
  (answer) => { document.getElementById("answer").textContent = "workspace " + answer.workspace; },
  (error) => { document.getElementById("answer").textContent = "failed " + error.message; },
);
