// On every console page with accounts on: who is signed in (with Sign out), and the role in the chosen
// workspace as <body data-role> (and whether they administer any workspace as <body data-administers>), so
// that controls marked data-requires="editor|admin|admin-anywhere" are hidden from those who may not use them
// (security.css). Someone with a role in one workspace only is taken to it.
"use strict";

(function () {
  const accountsLinks = document.querySelectorAll('.nav a[href="/accounts"]');
  for (const link of accountsLinks) link.hidden = true;  // shown below to admins only
  if (window.location.pathname === "/login") return;
  const RANK = { viewer: 1, editor: 2, admin: 3 };

  function roleIn(roles, workspace) {
    const held = [roles[workspace], roles["*"]].filter(Boolean);
    return held.sort((a, b) => RANK[b] - RANK[a])[0] || "none";
  }

  async function show() {
    const response = await fetch("/api/security/me", { credentials: "same-origin" });
    if (!response.ok) {
      document.body.dataset.role = "none";
      return;
    }
    const me = await response.json();
    const workspaces = Object.keys(me.roles);
    if (roleIn(me.roles, plughost.workspace()) === "none" && workspaces.length === 1 && workspaces[0] !== "*") {
      // someone of one workspace opens the console in another: take them to theirs (a page's URL may name
      // the workspace, and wins over the one remembered)
      localStorage.setItem("plughost.workspace", workspaces[0]);
      const url = new URL(window.location.href);
      if (url.searchParams.has("workspace")) url.searchParams.set("workspace", workspaces[0]);
      url.searchParams.delete("page_token");
      window.location.replace(url.pathname + url.search + url.hash);
      return;
    }
    const role = roleIn(me.roles, plughost.workspace());
    document.body.dataset.role = role;
    const administers = Object.values(me.roles).includes("admin");
    document.body.dataset.administers = String(administers);
    for (const link of accountsLinks) link.hidden = !administers;
    const topbar = document.querySelector(".topbar");
    if (!topbar) return;
    const signOut = plughost.el("form", { method: "post", action: "/api/security/logout" },
      plughost.el("button", { type: "submit", className: "secondary", id: "sign-out" }, "Sign out"));
    topbar.append(plughost.el("div", { className: "session", id: "session" },
      plughost.el("span", { id: "signed-in-as" }, me.name + " · " + role), signOut));
  }

  show();
})();
