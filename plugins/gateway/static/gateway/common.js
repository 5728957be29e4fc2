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
  function when(seconds) {  // the console's one date format (a <time>, UTC on hover)
    return window.plughost.time(seconds ? seconds * 1000 : null);
  }

  // US dollars, with the digits a cheap call needs.
  function dollars(usd) {
    if (usd === 0) return "$0";
    if (usd < 0.000001) return "<$0.000001";
    return "$" + usd.toFixed(usd >= 1 ? 2 : usd >= 0.01 ? 4 : 6);
  }

  window.plughostGateway = { showMessage, when, dollars };
})();
