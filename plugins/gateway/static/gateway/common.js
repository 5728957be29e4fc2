// What every gateway page shares: the message line under the sub-navigation, and times.
"use strict";

(function () {
  const message = document.getElementById("gw-message");

  function showMessage(text, isError) {
    message.textContent = text || "";
    message.classList.toggle("error", Boolean(isError));
    message.hidden = !text;
  }

  // Epoch seconds as a local date and time.
  function when(seconds) {
    return seconds ? new Date(seconds * 1000).toLocaleString(undefined, { hour12: false }) : "";
  }

  window.plughostGateway = { showMessage, when };
})();
