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
  function when(seconds) {  // the console's one date format (a <time>, UTC on hover)
    return window.plughost.time(seconds ? seconds * 1000 : null);
  }

  window.plughostGateway = { showMessage, when };
})();
