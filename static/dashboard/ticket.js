/* The staff ticket page: Ctrl+Enter (Cmd+Enter) sends the reply, canned replies go into the composer,
 * and the customer's new turns appear within 5 s without a reload.
 *
 * The poll asks GET /api/support/conversations/{id}/messages?after=<last id> (session auth, If-None-Match,
 * so an unchanged thread is a 304); when turns arrived it fetches them from the dashboard's own fragment
 * (/dashboard/conversations/{id}/turns?after=...), rendered by the server with the page's template and
 * Markdown rules, so there is one renderer for the thread.
 */
(() => {
  "use strict";

  const POLL_MS = 3000; // visible tab: a new turn shows within 5 s
  const HIDDEN_MS = 15000; // hidden tab: keep the ticket fresh, but quietly
  const ERROR_MS = 10000;

  // --- Composer --------------------------------------------------------------------------------
  function insertAtCursor(box, text) {
    const start = box.selectionStart ?? box.value.length;
    const end = box.selectionEnd ?? start;
    const before = box.value.slice(0, start);
    const gap = before && !before.endsWith("\n") ? "\n" : "";
    box.value = before + gap + text + box.value.slice(end);
    const caret = (before + gap + text).length;
    box.focus();
    box.setSelectionRange(caret, caret);
    box.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function setUpComposer(form) {
    const box = form.querySelector("textarea");
    const send = form.querySelector('button[type="submit"]:not([value="true"])');
    let sending = false;
    form.addEventListener("submit", (e) => {
      if (sending || !box.value.trim()) e.preventDefault(); // nothing to send, or already on its way
      else sending = true;
    });
    box.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !e.isComposing) {
        e.preventDefault();
        form.requestSubmit(send);
      }
    });
    const picker = form.querySelector("#canned-picker");
    const insert = form.querySelector("#canned-insert");
    if (picker && insert) {
      insert.addEventListener("click", () => {
        const option = picker.selectedOptions[0];
        if (!option || !option.value) return;
        insertAtCursor(box, option.dataset.content || "");
        picker.value = "";
      });
    }
  }

  // --- Live thread -----------------------------------------------------------------------------
  function showHandledBy(value) {
    for (const el of document.querySelectorAll(".handoff [data-when]")) el.hidden = el.dataset.when !== value;
  }

  function fragment(html) {
    const template = document.createElement("template");
    template.innerHTML = html; // the server's own rendering: escaped Markdown, same origin
    return template.content;
  }

  function startPolling(thread) {
    const note = document.getElementById("live-note");
    const state = { etag: "", lastId: thread.dataset.lastId || "", handledBy: thread.dataset.handledBy, timer: 0 };

    async function appendTurns() {
      const url = new URL(thread.dataset.turnsUrl, location.href);
      if (state.lastId) url.searchParams.set("after", state.lastId);
      const res = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!res.ok) throw new Error(`turns: HTTP ${res.status}`);
      const turns = fragment(await res.text());
      if (res.headers.get("X-Turns-Replace") === "true") thread.replaceChildren();
      let customer = 0;
      for (const article of [...turns.querySelectorAll("article.turn")]) {
        if (thread.querySelector(`article.turn[data-id="${CSS.escape(article.dataset.id)}"]`)) continue;
        if (article.classList.contains("user")) customer += 1;
        thread.append(article);
        state.lastId = article.dataset.id;
      }
      thread.dataset.lastId = state.lastId;
      if (customer && note) note.textContent = customer === 1 ? "The customer wrote again." : `${customer} new customer turns.`;
    }

    async function poll() {
      const url = new URL(thread.dataset.messagesUrl, location.href);
      if (state.lastId) url.searchParams.set("after", state.lastId);
      const headers = { Accept: "application/json" };
      if (state.etag) headers["If-None-Match"] = state.etag;
      const res = await fetch(url, { credentials: "same-origin", headers });
      if (res.status === 304) return true;
      if ([401, 403, 404].includes(res.status)) return false; // signed out, or the ticket is gone: stop
      if (!res.ok) throw new Error(`messages: HTTP ${res.status}`);
      const body = await res.json();
      if (Array.isArray(body.messages) && body.messages.length) await appendTurns();
      // Stored only once the turns are on the page: a failed append is retried with the old ETag.
      state.etag = res.headers.get("ETag") || "";
      if (body.handled_by && body.handled_by !== state.handledBy) {
        state.handledBy = body.handled_by;
        thread.dataset.handledBy = body.handled_by;
        showHandledBy(body.handled_by);
      }
      return true;
    }

    async function tick() {
      let wait = document.hidden ? HIDDEN_MS : POLL_MS;
      try {
        if (!(await poll())) return;
      } catch (error) {
        console.warn("Rezvo Support: could not refresh the thread", error);
        wait = ERROR_MS;
      }
      state.timer = setTimeout(tick, wait);
    }

    document.addEventListener("visibilitychange", () => {
      if (document.hidden) return;
      clearTimeout(state.timer); // back in view: catch up now
      state.timer = setTimeout(tick, 0);
    });
    state.timer = setTimeout(tick, POLL_MS);
  }

  function start() {
    const form = document.getElementById("reply-form");
    if (form) setUpComposer(form);
    const thread = document.getElementById("turns");
    if (thread && thread.dataset.messagesUrl) startPolling(thread);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start, { once: true });
  else start();
})();
