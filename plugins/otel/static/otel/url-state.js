// A list page whose whole state is its URL (the API's parameters, the page_token and the workspace):
// going somewhere pushes a history entry and redraws from the URL, so Back, reload and a pasted link
// show the same list. history.state keeps the page tokens of the pages before, for "Previous".
"use strict";

window.otelUrlState = function (path, draw) {
  const { workspace } = window.plughost;

  function current() {
    return new URLSearchParams(window.location.search);
  }

  function before() {
    return (history.state && history.state.previous) || [];
  }

  function go(params, { replace = false, previous = [] } = {}) {
    params.delete("workspace");
    params.append("workspace", workspace()); // last, the same in every link
    const url = path + "?" + params;
    if (replace) history.replaceState({ previous }, "", url);
    else history.pushState({ previous }, "", url);
    draw(current());
  }

  // The API query the URL describes: its parameters but the console's own (workspace), and the page size.
  function apiQuery(params, limit) {
    const query = new URLSearchParams(Array.from(params).filter(([key, value]) => key !== "workspace" && value !== ""));
    query.set("limit", String(limit));
    return query;
  }

  // "Previous" and "Next" buttons; call the returned function with each page's next_page_token.
  function pager(previousButton, nextButton) {
    let nextToken = null;
    nextButton.addEventListener("click", () => {
      if (!nextToken) return;
      const params = current();
      const here = params.get("page_token") || "";
      params.set("page_token", nextToken);
      go(params, { previous: [...before(), here] });
    });
    previousButton.addEventListener("click", () => {
      if (before().length) {
        history.back();
        return;
      }
      const params = current();
      params.delete("page_token");
      go(params);
    });
    return function update(token) {
      nextToken = token;
      const deep = current().has("page_token");
      nextButton.disabled = !token;
      previousButton.disabled = !before().length && !deep;
      previousButton.textContent = before().length || !deep ? "Previous" : "First page";
    };
  }

  // Start: name the workspace in the URL (a link copied from here then shows the same), and draw.
  function start() {
    window.addEventListener("popstate", () => draw(current()));
    if (current().get("workspace") !== workspace()) go(current(), { replace: true, previous: before() });
    else draw(current());
  }

  return { current, go, apiQuery, pager, start };
};
