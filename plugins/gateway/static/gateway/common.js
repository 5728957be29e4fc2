// What every gateway page shares: the message line under the sub-navigation, times and money.
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

  // US dollars, with the digits a cheap call needs.
  function dollars(usd) {
    if (usd === 0) return "$0";
    if (usd < 0.000001) return "<$0.000001";
    return "$" + usd.toFixed(usd >= 1 ? 2 : usd >= 0.01 ? 4 : 6);
  }

  window.plughostGateway = { showMessage, when, dollars };
})();
