/* The staff queue refreshes itself every 3 s and counts new escalations in the tab title: "(2) Queue · ...".
 *
 * "New" is escalated since the page was opened or last focused, measured by the server's clock: each
 * fragment from /dashboard/queue/live carries data-now, the next request's `since` after a focus.
 */
(() => {
  "use strict";

  // A new escalation shows within 5 s: one interval plus the fragment's round trip must fit in it (at 5 s
  // a ticket escalated just after a refresh showed after 5 s and more).
  const POLL_MS = 3000;
  const HIDDEN_MS = POLL_MS; // a hidden tab is where the title count matters most: keep the same pace
  const ERROR_MS = 15000;
  const baseTitle = document.title.replace(/^\(\d+\)\s*/, "");

  function setTitle(count) {
    document.title = count > 0 ? `(${count}) ${baseTitle}` : baseTitle;
  }

  function start() {
    let region = document.getElementById("queue-live");
    if (!region || !region.dataset.liveUrl) return;
    let since = region.dataset.now || "";
    let serverNow = since;
    let timer = 0;

    async function refresh() {
      const url = new URL(region.dataset.liveUrl, location.href);
      if (since) url.searchParams.set("since", since);
      const res = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!res.ok) throw new Error(`queue: HTTP ${res.status}`);
      const template = document.createElement("template");
      template.innerHTML = (await res.text()).trim(); // the server's own rendering, same origin
      const next = template.content.querySelector("#queue-live");
      if (!next) throw new Error("queue: no #queue-live in the answer");
      serverNow = next.dataset.now || serverNow;
      setTitle(Number(next.dataset.newEscalations || 0));
      // Replace the table only when it changed, so a hovered row or a focused link stays put.
      if (next.innerHTML !== region.innerHTML) {
        region.replaceWith(next);
        region = next;
      }
    }

    async function tick() {
      let wait = document.hidden ? HIDDEN_MS : POLL_MS;
      try {
        await refresh();
      } catch (error) {
        console.warn("Rezvo Support: could not refresh the queue", error);
        wait = ERROR_MS;
      }
      timer = setTimeout(tick, wait);
    }

    window.addEventListener("focus", () => {
      since = serverNow; // seen: count again from now
      setTitle(0);
      clearTimeout(timer);
      timer = setTimeout(tick, 0);
    });
    timer = setTimeout(tick, POLL_MS);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start, { once: true });
  else start();
})();
